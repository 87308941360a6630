"""Adaptive repetitions against a fixed design, on simulated groups of known truth (issue 23, point 3).

Pure simulation: no runtime runs. Each simulated group is one model x batch x precision cell of runtimes whose
true medians and spreads come from a real recorded sweep; runs are drawn round by round, and the stopping rule
(orchestrator/analysis/stopping.py) is asked after every round which cells go on, exactly as the sweep loop asks.
The fixed design draws `max` runs of every runtime and gives the verdict of analysis/best.py (the leader against
every other runtime, Mann-Whitney, Holm over those comparisons).

Where the numbers come from: the 15-runtime CPU sweep of docs/findings.md (`configs/cpu-runtimes.toml`, 6
repetitions, 864 runs, p50 latency per batch), as drawn in docs/figures/cpu-runtimes-latency-p50.png, the only
record of it on the machine this was written on (its results folder is not kept). PANELS are the medians printed
on that figure's bars; IQR_SHARE are its whiskers (interquartile range over the median), read off the figure for
the 69 bars of six panels. A simulated cell's run-to-run noise is a Student t with 5 degrees of freedom (heavier
tails than the normal, like the outliers those whiskers show) scaled to a recorded IQR share drawn at random; its
true median is the recorded one moved by that median's own standard error (the recorded medians are estimates of
6 runs); a host-wide drift is a random walk over rounds, shared by every runtime of the group, of DRIFT per round
(the round-to-round scatter of the same loop's interleaved means in BENCHMARKS.md's overhead table is 1-4 % at
batch 1; runs of one round are interleaved, so the shared part is the smaller one).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from orchestrator.analysis.comparisons import ALPHA, holm  # noqa: E402
from orchestrator.analysis.stopping import StoppingRule, group_verdict, runs_used, t_test  # noqa: E402

# p50 ms per batch of each runtime, per panel, docs/figures/cpu-runtimes-latency-p50.png (15 fp32 runtimes;
# int8: the 9 ONNX Runtime and OpenVINO paths, 8 for BERT where one has no int8 model)
PANELS = {
    "bert bs1 fp32": [192, 176, 154, 139, 299, 228, 139, 122, 128, 125, 134, 123, 122, 125, 117],
    "bert bs64 fp32": [8893, 8334, 8154, 8628, 16056, 14713, 8877, 7754, 9625, 7828, 9043, 8018, 7712, 8073, 7254],
    "mobilenet_v2 bs1 fp32": [22.8, 10.8, 16.2, 88.1, 47.4, 7.14, 4.3, 4.71, 4.1, 4.17, 4.43, 4.79, 5.81, 4.3, 4.83],
    "mobilenet_v2 bs64 fp32": [2664, 830, 617, 7262, 2973, 572, 278, 331, 283, 354, 281, 348, 331, 331, 380],
    "resnet50 bs1 fp32": [62.1, 79.5, 54.9, 53.2, 81.3, 78.4, 43.3, 39, 41, 33.1, 39.5, 35.1, 39.3, 34.3, 33.1],
    "resnet50 bs64 fp32": [7447, 3357, 2731, 2940, 5202, 5163, 2450, 2483, 2408, 2110, 2365, 2176, 2534, 2138, 2090],
    "bert bs1 int8": [47.5, 43.7, 134, 45.7, 134, 141, 136, 141],
    "bert bs64 int8": [3122, 3374, 9139, 3287, 8687, 9094, 8881, 8496],
    "mobilenet_v2 bs1 int8": [1.96, 1.65, 1.94, 1.79, 2.21, 1.81, 1.78, 1.73, 1.72],
    "mobilenet_v2 bs64 int8": [119, 101, 118, 95.8, 127, 100, 91.8, 93.7, 101],
    "resnet50 bs1 int8": [12.7, 11.5, 12.9, 13.7, 12.7, 14.2, 11.2, 14.5, 14.4],
    "resnet50 bs64 int8": [724, 650, 721, 855, 685, 831, 653, 849, 825],
}
# IQR over median per bar, same figure: BERT bs1 fp32, BERT bs64 fp32, BERT bs1 int8, MobileNetV2 bs1 fp32 (the
# five framework bars; the converted ones are too short to read), ResNet-50 bs1 fp32, bs64 fp32, MobileNetV2 bs64 int8
IQR_SHARE = [
    .11, .16, .15, .05, .10, .01, .14, .04, .12, .05, .07, .06, .13, .05, .03,
    .08, .03, .05, .03, .04, .005, .04, .08, .09, .02, .02, .06, .02, .06, .05,
    .03, .65, .03, .13, .07, .19, .10, .10,
    .28, .15, .07, .17, .07,
    .13, .05, .15, .02, .08, .09, .04, .06, .08, .02, .05, .04, .02, .04, .06,
    .05, .05, .01, .02, .02, .05, .02, .02, .03, .02, .01, .04, .03, .02, .01,
    .07, .07, .06, .25, .08, .03, .11, .03, .12,
]
RECORDED_RUNS = 6
T5_IQR = 1.4534  # interquartile range of Student's t with 5 degrees of freedom
DRIFT = 0.01
# name: (runtimes, true medians relative to the best, or None: a recorded panel's; share of --groups)
SHAPES = {"study (9 runtimes)": (9, None, 1.0), "cpu-runtimes (15 runtimes)": (15, None, 1.0),
          # where sequential looks could do harm: every runtime the same (any "best" is wrong), and a best only
          # 1 % ahead of the second (calling the second best is wrong); spreads still the recorded ones
          # a wrong "best" is rare there (about 1 % and 0.2 %): 3 times --groups, or a few counts apart would decide
          "9 runtimes of one truth": (9, (1.0,) * 9, 3.0),
          "9 runtimes, the best 1 % ahead": (9, (1.0, 1.01, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9), 3.0)}
DIFFERENCE = 0.05  # a group "has a difference" when its true best is at least 5 % below every other runtime


def draw_group(rng: np.random.Generator, runtimes: int,
               relative: tuple[float, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(true medians, noise scales) of one group shaped like a recorded panel with at least `runtimes` bars, or
    with the `relative` true medians given."""
    if relative is not None:
        return np.asarray(relative, dtype=float), rng.choice(IQR_SHARE, runtimes) / T5_IQR
    panels = [p for p in PANELS.values() if len(p) >= runtimes]
    panel = panels[int(rng.integers(len(panels)))]
    medians = rng.choice(np.asarray(panel, dtype=float), runtimes, replace=False)
    scale = rng.choice(IQR_SHARE, runtimes) / T5_IQR
    # the recorded medians are estimates: moved by their standard error, 1.2533 sd / sqrt(n), sd of t5 sqrt(5/3)
    truth = medians * np.exp(rng.normal(0, 1.2533 * scale * math.sqrt(5 / 3) / math.sqrt(RECORDED_RUNS)))
    return truth, scale


def draw_runs(rng: np.random.Generator, truth: np.ndarray, scale: np.ndarray, rounds: int,
              drift: float = DRIFT) -> np.ndarray:
    """runs[runtime, round]: t5 noise at each runtime's scale, times the host's drift shared by a round."""
    walk = np.cumsum(rng.normal(0, drift, rounds))
    return truth[:, None] * np.exp(scale[:, None] * rng.standard_t(5, (truth.size, rounds)) + walk[None, :])


def fixed_verdict(runs: list[np.ndarray] | np.ndarray, test: str = "mann-whitney",
                  alpha: float = ALPHA) -> tuple[str, int]:
    """analysis/best.py's verdict on the runs: the leader (lowest median) is best when its comparison with every
    other runtime is significant after Holm over those comparisons; else a tie."""
    from scipy import stats as sps

    leader = int(np.argmin([np.median(r) for r in runs]))
    others = [r for i, r in enumerate(runs) if i != leader]
    if test == "mann-whitney" and isinstance(runs, np.ndarray):  # comparisons.mann_whitney, all pairs in one call
        raw = sps.mannwhitneyu(np.broadcast_to(runs[leader], (len(others), runs.shape[1])), np.asarray(others),
                               alternative="two-sided", axis=1).pvalue.tolist()
    elif test == "mann-whitney":
        raw = [float(sps.mannwhitneyu(runs[leader], other, alternative="two-sided").pvalue) for other in others]
    else:
        raw = [t_test(runs[leader], other) for other in others]
    return ("best" if all(p < alpha for p in holm(raw)) else "tie"), leader


def adaptive(runs: np.ndarray, rule: StoppingRule) -> tuple[str, int, int]:
    """(verdict, leader, runs used). Every run a fixed design would make is drawn; the rule, replayed over the
    rounds, uses each runtime's first runs up to where it stopped (stopping.runs_used: the same as asking after
    every round, which tests/host/analysis/test_stopping.py checks). The verdict rule's answer is its own; the
    precision rule's is best.py's on the runs it left."""
    names = [f"r{i:02d}" for i in range(runs.shape[0])]
    values = {name: runs[i].tolist() for i, name in enumerate(names)}
    used = runs_used(rule, values)
    total = sum(used.values())
    if rule.stop == "precision":
        return (*fixed_verdict([runs[i, :used[name]] for i, name in enumerate(names)]), total)
    answer = group_verdict(rule, {name: values[name][:used[name]] for name in names})
    return answer.verdict, names.index(answer.leader), total


FIXED, REPLICATE = "fixed, Mann-Whitney (best.py)", "fixed, a second draw"


def simulate(groups: int, runtimes: int, rules: dict[str, StoppingRule], max_runs: int, seed: int,
             drift: float = DRIFT, relative: tuple[float, ...] | None = None, yardsticks: bool = True) -> dict:
    """The tallies of each design over `groups` simulated groups; `yardsticks`: also the fixed design on fresh runs
    and the fixed t-test (the same groups and runs are drawn either way)."""
    rng = np.random.default_rng(seed)
    designs = [FIXED, *([REPLICATE, "fixed, t-test"] if yardsticks else []), *rules]
    tally = {d: {"wrong_best": 0, "best": 0, "right_best": 0, "ties_with_difference": 0, "runs": 0, "agree": 0}
             for d in designs}
    with_difference = 0
    for _ in range(groups):
        truth, scale = draw_group(rng, runtimes, relative)
        runs, again = (draw_runs(rng, truth, scale, max_runs, drift) for _ in range(2))
        order = np.sort(truth)
        # where the lowest truth is shared, no runtime is the best: any "best" is wrong
        true_best = int(np.argmin(truth)) if order[1] > order[0] else -1
        difference = order[1] / order[0] - 1 >= DIFFERENCE
        with_difference += difference
        answers = {FIXED: (*fixed_verdict(runs), runs.size)}
        if yardsticks:
            answers.update({REPLICATE: (*fixed_verdict(again), runs.size),
                            "fixed, t-test": (*fixed_verdict(runs, "t"), runs.size)})
        answers.update({name: adaptive(runs, rule) for name, rule in rules.items()})
        reference = answers[FIXED]
        for design, (verdict, leader, used) in answers.items():
            t = tally[design]
            t["best"] += verdict == "best"
            t["right_best"] += verdict == "best" and leader == true_best
            t["wrong_best"] += verdict == "best" and leader != true_best
            t["ties_with_difference"] += verdict == "tie" and difference
            t["runs"] += used
            t["agree"] += verdict == reference[0] and (verdict == "tie" or leader == reference[1])
    total = groups * runtimes * max_runs
    return {"groups": groups, "runtimes": runtimes, "with_difference": int(with_difference),
            "designs": {d: {"wrong_best_rate": t["wrong_best"] / groups, "wrong_best": t["wrong_best"],
                            "best_rate": t["best"] / groups,
                            "right_best_rate": t["right_best"] / groups,
                            "tie_with_difference_rate": t["ties_with_difference"] / max(with_difference, 1),
                            "runs_share": t["runs"] / total, "agreement_with_fixed": t["agree"] / groups}
                        for d, t in tally.items()}}


# Other designs of the verdict rule, for the trade-off table of docs/statistics.md (--explore): (min runs,
# spending exponent, futility threshold, futility from runs, the comparison's test)
VARIANTS = [(2, 0.5, 0.6, 3, "welch"), (2, 0.5, 0.6, 3, "paired"), (2, 0.5, 0.6, 3, "moderated"),
            (2, 0.5, 0.6, 2, "moderated"), (2, 0.5, 0.4, 2, "moderated"), (2, 0.5, 0.8, 3, "moderated"),
            (2, 0.5, 0.8, 2, "welch")]


def variant_name(min_runs: int, rho: float, futility: float, futility_from: int, test: str) -> str:
    return (f"{test}, min {min_runs}, exponent {rho:g}, futility under {futility:.0%} from {futility_from} runs")


def explore(groups: int, seed: int, variants: list[tuple[int, float, float, int, str]]) -> list[str]:
    """A markdown table of the verdict rule's designs on the two recorded shapes and the two harm shapes: runs,
    right and wrong best, agreement with the fixed design (the fixed design's own rates in the header row)."""
    rules = {variant_name(*v): StoppingRule(v[0], 10, "verdict", alpha=ALPHA, rho=v[1], futility=v[2],
                                            futility_min_runs=v[3], test=v[4])  # type: ignore[arg-type]
             for v in variants}
    results = {shape: simulate(max(1, round(groups * share)), k, rules, 10, seed + i, relative=relative,
                               yardsticks=False)
               for i, (shape, (k, relative, share)) in enumerate(SHAPES.items())}
    short = ["9", "15", "one truth", "1 % ahead"]
    lines = ["| design | runs, " + " / ".join(short[:2]) + " | right best, " + " / ".join(short[:2]) +
             " | agreement, " + " / ".join(short[:2]) + " | wrong best, " + " / ".join(short) + " |",
             "|---|---|---|---|---|"]
    for design in [FIXED, *rules]:
        m = [r["designs"][design] for r in results.values()]
        lines.append(f"| {design} | " + " / ".join(f"{x['runs_share']:.1%}" for x in m[:2]) + " | " +
                     " / ".join(f"{x['right_best_rate']:.1%}" for x in m[:2]) + " | " +
                     " / ".join(f"{x['agreement_with_fixed']:.1%}" for x in m[:2]) + " | " +
                     " / ".join(f"{x['wrong_best_rate']:.1%} ({x['wrong_best']})" for x in m) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--explore", action="store_true",
                        help="print the trade-off table of the verdict rule's designs (VARIANTS) instead")
    parser.add_argument("--variants", type=str, default=None,
                        help="with --explore, the designs as 'min,exponent,futility,from,test;...' (default VARIANTS)")
    args = parser.parse_args()
    if args.explore:
        started = time.monotonic()
        try:
            variants = VARIANTS if not args.variants else [
                (int(m), float(rho), float(fut), int(fmin), test.strip())
                for m, rho, fut, fmin, test in (v.split(",") for v in args.variants.split(";") if v.strip())]
            for v in variants:
                StoppingRule(v[0], 10, "verdict", rho=v[1], futility=v[2], futility_min_runs=v[3], test=v[4])
        except ValueError as e:
            parser.error(f"--variants: each design is 'min,exponent,futility,from,test' (test: moderated, welch or "
                         f"paired), separated by ';': {e}")
        print("\n".join(explore(args.groups, args.seed, variants)))
        print(f"({args.groups} groups per recorded shape, 3 times as many per harm shape, seed {args.seed}: "
              f"{time.monotonic() - started:.0f} s)")
        return
    max_runs = 10
    rules = {"adaptive: verdict, min 2": StoppingRule(2, max_runs, "verdict", alpha=ALPHA),
             # more power for more runs: futility judged later and at a lower threshold
             "adaptive: verdict, min 2, exponent 0.5, futility under 60 % from 3 runs": StoppingRule(
                 2, max_runs, "verdict", alpha=ALPHA, rho=0.5, futility=0.6, futility_min_runs=3),
             # the previous design: each runtime's own variance (Welch), exponent 0.5, futility under 60 % from 3
             "adaptive: verdict, min 2, Welch's t-test, exponent 0.5, futility under 60 % from 3 runs": StoppingRule(
                 2, max_runs, "verdict", alpha=ALPHA, rho=0.5, futility=0.6, futility_min_runs=3, test="welch"),
             # the moderated test as limma publishes it, without stopping.py's safeguards: why they are there
             "adaptive: verdict, min 2, limma's moderated t-test as published": StoppingRule(
                 2, max_runs, "verdict", alpha=ALPHA, test="limma"),
             "adaptive: precision 2 %, min 3": StoppingRule(3, max_runs, "precision", target=0.02, alpha=ALPHA)}
    started, cpu = time.monotonic(), time.process_time()
    report = {"alpha": ALPHA, "max_runs": max_runs, "drift": DRIFT, "difference": DIFFERENCE, "seed": args.seed,
              "rules": {name: {"min_runs": r.min_runs, "max_runs": r.max_runs, "stop": r.stop, "target": r.target}
                        for name, r in rules.items()},
              "shapes": {shape: simulate(max(1, round(args.groups * share)), k, rules, max_runs, args.seed + i,
                                         relative=relative)
                         for i, (shape, (k, relative, share)) in enumerate(SHAPES.items())}}
    report["seconds"] = round(time.monotonic() - started, 1)
    report["cpu_seconds"] = round(time.process_time() - cpu, 1)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


def section(report: dict) -> list[str]:
    """BENCHMARKS.md's lines for this simulation (bench/write_report.py)."""
    lines = [f"bench/adaptive_simulation.py: {' / '.join(str(r['groups']) for r in report['shapes'].values())} "
             f"simulated groups per shape, alpha {report['alpha']}, max {report['max_runs']} runs, seed "
             f"{report['seed']} ({report['seconds']} s, {report['cpu_seconds']} s of CPU). Run-to-run spreads, and "
             "the true medians of the first two shapes, from the cpu-runtimes sweep "
             "(docs/figures/cpu-runtimes-latency-p50.png: the bars' medians and IQR whiskers); t5 noise; a host "
             f"drift of {report['drift']:.0%} per round shared by the group (the script says why); the last two "
             "shapes are where sequential looks could do harm. Wrong best: a runtime called best that is not the "
             "true best (where the lowest truth is shared, any), with the count of such groups. Ties with a difference: a tie called where the true "
             f"best is at least {report['difference']:.0%} below every other runtime. Agreement: the same verdict as "
             "the fixed Mann-Whitney design on the same runs (same best, or both a tie); the second draw is the "
             "fixed design on fresh runs of the same truth: how often two fixed designs agree. The verdict rule's rows, "
             "on the same runs: 'min 2' is its design (the moderated t-test on log values, each runtime's variance "
             "moderated by its group's with stopping.py's safeguards; alpha spent with exponent 0.75, futility under "
             "75 % conditional power from 2 runs: the constants of orchestrator/analysis/stopping.py); the others "
             "change the test or those constants (docs/statistics.md has the trade-off).", ""]
    for shape, result in report["shapes"].items():
        lines += [f"### {shape}: {result['groups']} groups, {result['with_difference']} with a difference", "",
                  "| design | runs (share of fixed) | best called | right best | wrong best | ties with a difference "
                  "| agreement with fixed |", "|---|---|---|---|---|---|---|"]
        for design, m in result["designs"].items():
            lines.append(f"| {design} | {m['runs_share']:.1%} | {m['best_rate']:.1%} | {m['right_best_rate']:.1%} | "
                         f"{m['wrong_best_rate']:.1%} ({m['wrong_best']}) | {m['tie_with_difference_rate']:.1%} | "
                         f"{m['agreement_with_fixed']:.1%} |")
        lines.append("")
    return lines


if __name__ == "__main__":
    main()
