"""report.md: the document with figures linked (relative paths) and tables inline."""
from __future__ import annotations

from pathlib import Path

from orchestrator.report.document import Bullets, Document, FigureBlock, Paragraph, TableBlock, fmt


def _cell(value: object) -> str:
    return fmt(value).replace("|", "\\|").replace("\n", " ")


def table_markdown(block: TableBlock, base: Path) -> str:
    frame = block.frame
    lines = [f"**{block.title}** ([csv]({block.csv.relative_to(base).as_posix()}))", ""]
    if frame.is_empty():
        return "\n".join(lines + ["(no rows)"])
    if block.max_rows == 0:
        return "\n".join(lines + [f"{frame.height} rows, in the CSV only."])
    shown, dropped = block.shown()
    lines.append("| " + " | ".join(shown.columns) + " |")
    lines.append("|" + "---|" * len(shown.columns))
    for row in shown.iter_rows():
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    if frame.height > block.max_rows:
        lines.append(f"\n{frame.height - block.max_rows} more rows in the CSV.")
    if dropped:
        lines.append(f"\n{len(dropped)} more columns in the CSV: {', '.join(dropped)}.")
    return "\n".join(lines)


def render_markdown(doc: Document, base: Path) -> str:
    out = [f"# {doc.title}", ""]
    for section in doc.sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Paragraph):
                out.append(f"> **Note:** {block.text}" if block.notice else block.text)
            elif isinstance(block, Bullets):
                out += [f"- **Caveat:** {item}" if block.notice else f"- {item}" for item in block.items]
            elif isinstance(block, TableBlock):
                out.append(table_markdown(block, base))
            elif isinstance(block, FigureBlock):
                out.append(f"![{block.caption}]({block.png.relative_to(base).as_posix()})")
                out.append(f"\n*{block.caption}* ([svg]({block.svg.relative_to(base).as_posix()}))")
            out.append("")
    return "\n".join(out)
