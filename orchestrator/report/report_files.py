"""What building a report wrote: its files, findings, advice and the warnings it went on with."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.analysis.advice_schema import Advice


@dataclass
class ReportFiles:
    markdown: Path
    html: Path
    figures: dict[str, Path] = field(default_factory=dict)  # name -> PNG (an SVG lies beside each)
    tables: dict[str, Path] = field(default_factory=dict)  # name -> CSV
    findings: list[str] = field(default_factory=list)
    energy_note: str | None = None  # why there is no energy figure, when there is none
    advice: Advice | None = None  # what the report opens with
    caveats: tuple[str, ...] = ()  # what holds for the whole host (no energy and why, ...): said once, at the top
    warnings: list[str] = field(default_factory=list)  # damaged files the report went on without, one line each
