"""BENCHMARKS.md's section on the client languages' loop overhead (bench/client_overhead.py, written alone by
`bench/write_report.py ... client-overhead`): the per-round statistics, the alternating order of the segments, and
the section rendered from a synthetic JSON, added once and rewritten in place, the rest of the page kept; the
bench's bad arguments."""
from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from client_overhead_report import (Cell, ClientOverheadReport, cross_language, language_figures, round_order)
from write_report import CLIENT_OVERHEAD_HEADING, main

MS = 1_000_000  # ns


def _rounds() -> list[dict[str, dict[str, list[int]]]]:
    """Three rounds of an ONNX Runtime cell: Python's runner 1 % above its bare loop in every round, Node's 5 %, 3 %
    and 4 %; Node's bare loop 0.9, 1.0 and 1.1 times Python's."""
    out = []
    for py_bare, node_factor, node_ratio in ((10.0, 0.9, 1.05), (12.0, 1.0, 1.03), (11.0, 1.1, 1.04)):
        node_bare = py_bare * node_factor
        out.append({"python": {"runner": [round(py_bare * 1.01 * MS)] * 3, "bare": [round(py_bare * MS)] * 3},
                    "node": {"runner": [round(node_bare * node_ratio * MS)] * 3,
                             "bare": [round(node_bare * MS) - 5, round(node_bare * MS), round(node_bare * MS) + 5]}})
    return out


def _cell(threads: int | None) -> Cell:
    rounds = _rounds()
    return Cell(engine="onnxruntime", artifact="mobilenet_v2/model.onnx", model="mobilenet_v2", batch_size=1,
                threads=threads, iterations_per_round=3, warmup_iterations=10, rounds=len(rounds),
                languages=[language_figures(rounds, "python", "Python", "onnxruntime/onnx-from-torch/cpu",
                                            "bench/bare_loops/ort_loop.py", {"onnxruntime": "1.31.1"}),
                           language_figures(rounds, "node", "Node.js", "onnxruntime/onnx-from-torch/cpu@node",
                                            "bench/bare_loops/ort_loop.js", {"onnxruntime": "1.31.1", "node": "20"})],
                cross_language=cross_language(rounds, "python", "node", {"python": "Python", "node": "Node.js"}),
                bench_seconds=12.0, load_1m=(0.2, 1.5 if threads is None else 0.4))


def _report(*threads: int | None) -> dict:
    cells = [_cell(t) for t in threads]
    return ClientOverheadReport(target_ratio=1.02, host="Test CPU", cpu_count=2, note="Synthetic.", cells=cells,
                                all_within_target=all(f.ratio <= 1.02 for c in cells for f in c.languages)
                                ).model_dump(mode="json")


def test_each_pair_is_a_ratio_of_its_own_round_and_the_cell_gives_their_median_and_range():
    cell = _cell(1)
    python, node = cell.languages
    assert python.round_ratios == pytest.approx([1.01] * 3)
    assert node.round_ratios == pytest.approx([1.05, 1.03, 1.04])
    assert (node.ratio, node.ratio_min, node.ratio_max) == pytest.approx((1.04, 1.03, 1.05))
    assert python.bare_median_ms == pytest.approx(11.0) and python.runner_median_ms == pytest.approx(11.11)
    assert node.bare_median_ms == pytest.approx(12.0) and node.runner_median_ms == pytest.approx(12.36)
    assert cell.cross_language.round_bare_ratios == pytest.approx([0.9, 1.0, 1.1])
    assert cell.cross_language.bare_ratio == pytest.approx(1.0)


def test_every_language_pair_is_adjacent_and_its_order_alternates_from_round_to_round():
    first, second = round_order(["python", "node"], 0), round_order(["python", "node"], 1)
    assert first == [("python", "runner"), ("python", "bare"), ("node", "runner"), ("node", "bare")]
    assert second == first[::-1]


def test_the_section_is_added_once_then_rewritten_in_place(tmp_path):
    (tmp_path / "client-overhead.json").write_text(json.dumps(_report(1, None)))
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n\n## Sampler cost\n\nkept\n")
    main(str(tmp_path), str(page), "client-overhead")
    text = page.read_text()
    assert text.startswith("# Benchmarks\n\n## Sampler cost\n\nkept\n\n" + CLIENT_OVERHEAD_HEADING)
    assert ("| onnxruntime (mobilenet_v2/model.onnx) | mobilenet_v2 | 1 | 1 | Node.js | 12.000 | 12.360 | "
            "1.040 (1.030-1.050) | 1.040 | 3 x 3 |") in text
    assert "| onnxruntime (mobilenet_v2/model.onnx) | mobilenet_v2 | 1 | default | Python | 11.000 | 11.110 |" in text
    assert ("| onnxruntime (mobilenet_v2/model.onnx) | mobilenet_v2 | default | Node.js vs Python | 11.000 | 12.000 | "
            "1.000 (0.900-1.100) |") in text
    assert "NOT all within 1.02" in text  # Node's 1.04
    assert "1-minute load average at the cells' starts and ends: 0.2 to 1.5 on 2 CPUs." in text
    (tmp_path / "client-overhead.json").write_text(json.dumps(_report(1)))
    main(str(tmp_path), str(page), "client-overhead")
    rewritten = page.read_text()
    assert rewritten.count(CLIENT_OVERHEAD_HEADING) == 1 and "| default |" not in rewritten
    assert rewritten.startswith("# Benchmarks\n\n## Sampler cost\n\nkept\n")


def test_missing_figures_are_named_in_one_message_and_nothing_is_written(tmp_path):
    page = tmp_path / "BENCHMARKS.md"
    page.write_text("# Benchmarks\n")
    with pytest.raises(SystemExit, match="no .*client-overhead.json; `python bench/client_overhead.py"):
        main(str(tmp_path), str(page), "client-overhead")
    assert page.read_text() == "# Benchmarks\n"


def test_a_figures_file_of_another_shape_is_refused():
    broken = _report(1)
    del broken["cells"][0]["cross_language"]
    with pytest.raises(ValidationError):
        ClientOverheadReport.model_validate(broken)


def test_the_whole_page_holds_the_section_after_the_runner_overhead(tmp_path):
    (tmp_path / "sampler.json").write_text(json.dumps({"note": "Synthetic", "runs": [], "host": "test",
                                                       "cpu_count": 2, "python": "3.11"}))
    (tmp_path / "client-overhead.json").write_text(json.dumps(_report(1)))
    page = tmp_path / "BENCHMARKS.md"
    main(str(tmp_path), str(page))
    text = page.read_text()
    assert text.index("## Runner overhead") < text.index(CLIENT_OVERHEAD_HEADING) < text.index("## Sampler cost")
    assert "| onnxruntime (mobilenet_v2/model.onnx) | mobilenet_v2 | 1 | 1 | Node.js | 12.000 |" in text


def test_bad_arguments_name_the_valid_choices_in_two_lines_and_write_nothing(tmp_path, capsys):
    import sys

    from client_overhead import iterations_for, main as bench_main

    out = tmp_path / "client-overhead.json"
    python = sys.executable
    for bad, named in ((["--models", "vgg16"], "'mobilenet_v2', 'resnet50'"), (["--threads", "0"], "'default'"),
                       (["--rounds", "1"], "at least 2"), (["--ort-python", str(tmp_path)], "env python")):
        given = {"--out": str(out), "--ort-python": python, "--torch-python": python, "--artifact-dir": str(tmp_path)}
        given.update(dict(zip(bad[::2], bad[1::2])))
        with pytest.raises(SystemExit) as ended:
            bench_main([x for pair in given.items() for x in pair])
        assert ended.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and err[0].startswith("usage:") and named in err[1], err
    assert not out.exists()
    assert iterations_for(10e6, 1.0) == 100 and iterations_for(500e6, 1.0) == 20 and iterations_for(1e3, 1.0) == 2000
