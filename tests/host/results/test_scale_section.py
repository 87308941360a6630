"""BENCHMARKS.md's Scale section rewritten alone (bench/write_report.py ... scale): the rest of the page stays as it
was, the section's hand-written leftovers go, and resume/status rows show their first (index-building) read."""
from __future__ import annotations

import json

from write_report import main

PAGE = ("# Benchmarks\n\n## Sampler cost\n\nkept 1\n\n## Scale: report, resume and merge from 2,000 to 200,000 runs\n\n"
        "| old table |\n\n**Stale since issue 22:** an old paragraph\n\n## Start-up cost per launcher\n\nkept 2\n")


def _figures(first, median):
    return {"resume": {"wall_s_median": median, "wall_s": [first, median], "peak_rss_mib_max": 80.0,
                       "first_wall_s": first, "load_1m": [3.5, 4.0]}}


def test_only_the_scale_section_is_rewritten(tmp_path):
    after = {"shards": 64, "repeats": 3, "cpu_count": 2, "label": "now", "note": "The host was shared.",
             "targets": {"resume": {"200000": [5, None]}},
             "sizes": {"200016": {"runs": 200016, "repeats": 3, **_figures(200.0, 2.5)}}}
    before = {"label": "main", "sizes": {"200016": {"runs": 200016, "repeats": 1, **_figures(223.0, 223.0)}}}
    (tmp_path / "scale.json").write_text(json.dumps(after))
    (tmp_path / "scale-before.json").write_text(json.dumps(before))
    page = tmp_path / "BENCHMARKS.md"
    page.write_text(PAGE)
    main(str(tmp_path), str(page), "scale")
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\n## Sampler cost\n\nkept 1\n\n## Scale: report, resume, status and merge")
    assert text.endswith("## Start-up cost per launcher\n\nkept 2\n")
    assert "| resume | 200016 | 223.0 | 80.0 | 200.0 | 2.5 | 80.0 | 3 | < 5 s |" in text
    assert "Stale" not in text and "old table" not in text
    assert "The host was shared. The host's 1-minute load average at the start of the commands: 3.5 to 4.0" in text
    assert "Not measured in this run: report, status, merge" in text
