"""The report as plain blocks, rendered twice (markdown, html) so the two never say different things."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


@dataclass(frozen=True)
class Paragraph:
    text: str
    notice: bool = False  # shown as a highlighted note: something the reader must not miss (missing energy)


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class TableBlock:
    title: str
    frame: pl.DataFrame
    csv: Path  # the table's CSV file, written beside the report
    max_rows: int = 60  # the document shows this many; the CSV has them all


@dataclass(frozen=True)
class FigureBlock:
    caption: str
    png: Path
    svg: Path


@dataclass
class Section:
    title: str
    blocks: list[Paragraph | Bullets | TableBlock | FigureBlock] = field(default_factory=list)


@dataclass
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)


def fmt(value: object) -> str:
    """A cell of a rendered table: floats to 4 significant digits, missing as an empty-looking dash, never 0."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # nan
            return "–"
        if value == 0:
            return "0"
        if abs(value) >= 1e4:
            return f"{value:.0f}"
        return f"{value:.4g}" if abs(value) >= 1e-3 else f"{value:.3e}"
    return str(value)
