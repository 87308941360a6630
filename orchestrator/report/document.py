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
    notice: bool = False  # caveats the reader must not miss, shown highlighted


@dataclass(frozen=True)
class TableBlock:
    title: str
    frame: pl.DataFrame
    csv: Path  # the table's CSV file, written beside the report
    max_rows: int = 60  # the document shows this many; the CSV has them all
    # The columns shown, where a table has more than the page has room for (the CSV has them all); empty: all of
    # them, their cells wrapping to the page's width (html.py's style).
    columns: tuple[str, ...] = ()

    def shown(self) -> tuple[pl.DataFrame, list[str]]:
        """The rows and columns the document shows, and the names of the columns only the CSV has."""
        kept = [c for c in self.columns if c in self.frame.columns] if self.columns else self.frame.columns
        return (self.frame.select(kept).head(self.max_rows), [c for c in self.frame.columns if c not in kept])


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
