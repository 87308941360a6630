"""report.html: one file with nothing outside it (images inline as base64, styles inline), to mail or archive."""
from __future__ import annotations

import base64
from html import escape

from orchestrator.report.document import Bullets, Document, FigureBlock, Paragraph, TableBlock, fmt

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em;max-width:100%}
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top;overflow-wrap:anywhere}
ul.caveats{background:#fff6d6;border-left:4px solid #e0b000;padding:.5em 1em .5em 2em}
th{background:#f2f2f2} figure{margin:1em 0} img{max-width:100%} figcaption{font-style:italic;color:#555}
.note{background:#fff6d6;border-left:4px solid #e0b000;padding:.5em 1em}
"""


def table_html(block: TableBlock) -> str:
    frame = block.frame
    head = f"<p><strong>{escape(block.title)}</strong> (CSV: <code>{escape(block.csv.name)}</code>)</p>"
    if frame.is_empty():
        return head + "<p>(no rows)</p>"
    if block.max_rows == 0:
        return head + f"<p>{frame.height} rows, in the CSV only.</p>"
    shown, dropped = block.shown()
    rows = ["<tr>" + "".join(f"<th>{escape(c)}</th>" for c in shown.columns) + "</tr>"]
    for row in shown.iter_rows():
        rows.append("<tr>" + "".join(f"<td>{escape(fmt(v))}</td>" for v in row) + "</tr>")
    more = f"<p>{frame.height - block.max_rows} more rows in the CSV.</p>" if frame.height > block.max_rows else ""
    if dropped:
        more += f"<p>{len(dropped)} more columns in the CSV: {escape(', '.join(dropped))}.</p>"
    return head + f'<table id="{escape(block.csv.stem)}">' + "".join(rows) + "</table>" + more


def figure_html(block: FigureBlock) -> str:
    data = base64.b64encode(block.png.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{escape(block.caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(block.caption)}</figcaption></figure>")


def render_html(doc: Document) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{escape(doc.title)}</title>",
           f"<style>{_STYLE}</style></head><body>", f"<h1>{escape(doc.title)}</h1>"]
    for section in doc.sections:
        anchor = section.title.lower().replace(" ", "-")
        out.append(f'<section id="{escape(anchor)}"><h2>{escape(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Paragraph):
                cls = ' class="note"' if block.notice else ""
                out.append(f"<p{cls}>{escape(block.text)}</p>")
            elif isinstance(block, Bullets):
                cls = ' class="caveats"' if block.notice else ""
                out.append(f"<ul{cls}>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>")
            elif isinstance(block, TableBlock):
                out.append(table_html(block))
            elif isinstance(block, FigureBlock):
                out.append(figure_html(block))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)
