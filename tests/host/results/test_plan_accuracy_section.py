"""BENCHMARKS.md's section on the time estimate's accuracy (bench/plan_accuracy.py, written alone by
`bench/write_report.py ... plan-accuracy`): each case's estimate against its measured sweep, judged against the
±25 % goal, added once and rewritten in place, the rest of the page kept."""
from __future__ import annotations

import json

from write_report import PLAN_ACCURACY_HEADING, main


def _estimate(low, high=None):
    return {"low_s": low, "high_s": high if high is not None else low, "parts": []}


REPORT = {"config": "configs/quick.toml", "revision": "abc1234", "cpu_count": 2, "tolerance": 0.25,
          "cases": [{"case": "fresh clone, environments included", "estimate": _estimate(960.0), "measured_s": 920.0},
                    {"case": "environments and caches built", "estimate": _estimate(300.0), "measured_s": 500.0}]}


def test_each_case_is_judged_against_the_goal_and_the_section_is_added_then_rewritten(tmp_path):
    (tmp_path / "plan-accuracy.json").write_text(json.dumps(REPORT))
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\n## Sampler cost\n\nkept\n")
    main(str(tmp_path), str(page), "plan-accuracy")
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\n## Sampler cost\n\nkept\n\n" + PLAN_ACCURACY_HEADING)
    assert "| fresh clone, environments included | 960 s | 920 s | 1.04 | yes |" in text
    assert "| environments and caches built | 300 s | 500 s | 0.60 | no |" in text
    again = {**REPORT, "cases": REPORT["cases"][:1]}
    (tmp_path / "plan-accuracy.json").write_text(json.dumps(again))
    main(str(tmp_path), str(page), "plan-accuracy")
    rewritten = page.read_text()
    assert rewritten.count(PLAN_ACCURACY_HEADING) == 1 and "caches built" not in rewritten
    assert rewritten.startswith("# Benchmarks\n\n## Sampler cost\n\nkept\n")
