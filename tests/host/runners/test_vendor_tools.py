"""bench/vendor_tools.py's pure parts: the settings benchmark_app is given, the search for tools in an environment,
and the BENCHMARKS.md section (bench/ is on the tests' import path, as it is on the scripts' own)."""
from __future__ import annotations

from vendor_tools import openvino_settings, tool_files
from vendor_tools_report import section


def test_benchmark_app_gets_what_the_runners_compiled_model_uses_not_the_tools_defaults():
    compiled = {"performance_hint": "THROUGHPUT", "num_streams": 4, "inference_num_threads": 8,
                "enable_cpu_pinning": False, "inference_precision_hint": "f32", "execution_devices": ["CPU"]}
    assert openvino_settings(compiled) == {"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": "4",
                                           "INFERENCE_NUM_THREADS": "8", "ENABLE_CPU_PINNING": "NO",
                                           "INFERENCE_PRECISION_HINT": "f32"}


def test_tools_are_found_in_bin_and_site_packages_of_an_environment(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "benchmark_app").write_text("")
    (tmp_path / "bin" / "python").write_text("")
    tools = tmp_path / "lib" / "python3.11" / "site-packages" / "tensorflow" / "tools"
    tools.mkdir(parents=True)
    (tools / "benchmark_model").write_text("")
    assert tool_files(tmp_path) == ["benchmark_app", "tensorflow/tools/benchmark_model"]
    assert tool_files(tmp_path / "absent") == []


def _cell(tool: str, ratio: float, ratios: tuple[float, float]) -> dict:
    return {"tool": tool, "runtime": "openvino/onnx-from-torch/cpu", "model": "mobilenet_v2",
            "artifact": "model.onnx", "statistic": "median", "runner_ms": 5.0 * ratio, "tool_ms": 5.0,
            "ratio": ratio, "ratio_min": ratios[0], "ratio_max": ratios[1], "iterations": 200,
            "pairs": [{}] * 7, "runner_threads": 2,
            "tool_config": {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": "2",
                            "ENABLE_CPU_PINNING": "YES", "INFERENCE_PRECISION_HINT": "f32"},
            "tool_reported": {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": "2",
                              "ENABLE_CPU_PINNING": "True", "INFERENCE_PRECISION_HINT": "<Type: 'float32'>"}}


def _report(*cells: dict, label: str = "this checkout") -> dict:
    return {"cells": list(cells), "label": label, "pairs": 7, "seconds_per_segment": 1.0, "bench_seconds": 200.0, "min_inferences": 5,
            "unavailable": [], "no_tool": [{"environment": "torch", "reason": "a library, not a tool", "found": []}]}


def test_the_section_names_the_cells_outside_the_goal_and_shows_the_runner_before_its_fix():
    now = _report(_cell("benchmark_app", 1.005, (0.97, 1.03)))
    before = _report(_cell("benchmark_app", 1.12, (1.00, 1.27)), label="main before the fix")
    text = "\n".join(section(now, before))
    assert "| benchmark_app | openvino/onnx-from-torch/cpu | mobilenet_v2 (model.onnx) | median | 5.02 | 5.00 | " \
           "1.005 (0.97-1.03) | 7 x 200 | hint LATENCY, 1 stream(s), 2 threads, pinning YES, f32" in text
    assert "Outside 2%" not in text  # 1.005 is within the goal
    assert "main before the fix" in text and "| 1.120 (1.00-1.27) |" in text
    assert "the tool reported other values" not in text  # what it compiled is what it was given
    assert "- torch: a library, not a tool" in text
    assert "the call adds" not in text  # no probe in these cells: nothing claimed

    outside = "\n".join(section(before))
    assert "Outside 2% with pairs on both sides of 1 (the machine's drift exceeds the difference, if any): " \
           "benchmark_app mobilenet_v2 1.120 (pairs 1.00-1.27)." in outside
    steady = "\n".join(section(_report(_cell("benchmark_app", 1.12, (1.05, 1.27)))))
    assert "Outside 2% in every pair, not explained by the above: benchmark_app mobilenet_v2 1.120" in steady


def test_a_tool_that_compiled_other_settings_is_said():
    cell = _cell("benchmark_app", 1.0, (0.99, 1.01))
    cell["tool_reported"] = {**cell["tool_reported"], "NUM_STREAMS": "2"}
    assert "the tool reported other values" in "\n".join(section(_report(cell)))


def test_the_python_calls_own_cost_is_given_beside_the_tools_latency():
    cell = {**_cell("benchmark_app", 1.01, (0.99, 1.03)), "own_timer_probe": {"call_overhead_median_ms": 0.05}}
    assert "mobilenet_v2: the call adds 50 us per inference over OpenVINO's own timer (median over 200), 1.00% of " \
           "the tool's median." in "\n".join(section(_report(cell)))


def test_the_fix_alone_is_shown_where_the_runner_was_measured_against_its_former_self():
    fix = {"label": "main before the fix", "cells": [
        {"runtime": "openvino/onnx-from-torch/cpu", "model": "resnet50", "before_ms": 40.0, "now_ms": 36.0,
         "ratio": 0.9, "ratio_min": 0.85, "ratio_max": 0.97, "iterations": 25, "pairs": [{}] * 9,
         "before_cpu_ms": 70.0, "now_cpu_ms": 63.0, "cpu_ratio": 0.9, "cpu_ratio_min": 0.88, "cpu_ratio_max": 0.93}]}
    text = "\n".join(section(_report(_cell("benchmark_app", 1.0, (0.98, 1.02))), None, fix))
    assert "| openvino/onnx-from-torch/cpu | resnet50 | 40.00 | 36.00 | 0.900 (0.85-0.97) | 70.00 | 63.00 | " \
           "0.900 (0.88-0.93) | 9 x 25 |" in text
    assert "before: main before the fix" in text
