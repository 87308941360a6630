"""The report of a sweep: figures (matplotlib), report.md, a self-contained report.html, and every table as CSV."""
