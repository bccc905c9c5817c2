"""The bench's statistics (bench/run_bench.py, issue 14): the interval beside each ratio to Ansible in
RESULTS.md's targets, and the line that says whether a missed target lies inside it. Pure: no hosts."""
from __future__ import annotations

import importlib.util
import math
import random
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("run_bench", Path(__file__).resolve().parents[2] / "bench" / "run_bench.py")
run_bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(run_bench)


@pytest.mark.parametrize("n, low, high, coverage", [
    (15, 4, 12, 1 - 2 * sum(math.comb(15, i) for i in range(4)) / 2 ** 15),  # 96.5%: the Ansible pairs at N <= 16
    (9, 2, 8, 1 - 2 * sum(math.comb(9, i) for i in range(2)) / 2 ** 9),      # 96.1%: its rounds up to 776ecca
    (6, 1, 6, 1 - 2 / 2 ** 6),                                                # 96.9%: the extremes are the first 95%
    (5, 1, 5, 1 - 2 / 2 ** 5),                                                # 93.8%: fewer than 95% can give
    (3, 1, 3, 0.75),                                                          # the bench's rounds above N=16
    (2, 1, 2, 0.5),                                                           # --quick
])
def test_the_interval_of_a_median_is_the_order_statistics_binomial_coverage_gives(n, low, high, coverage):
    values = [float(i) for i in range(1, n + 1)]
    random.Random(n).shuffle(values)  # order of the rounds does not matter
    got_low, got_high, got_coverage = run_bench.median_interval(values)
    assert (got_low, got_high) == (low, high)
    assert got_coverage == pytest.approx(coverage)


def test_the_interval_holds_the_median_and_narrows_with_more_rounds():
    rng = random.Random(7)
    few = [rng.gauss(15, 1) for _ in range(9)]
    many = few + [rng.gauss(15, 1) for _ in range(40)]
    widths = []
    for xs in (few, many):
        low, high, _ = run_bench.median_interval(xs)
        assert low <= sorted(xs)[len(xs) // 2] <= high
        widths.append(high - low)
    assert widths[1] < widths[0]


def _stats(ratios: list[float]) -> dict:
    # summarize's keys for one variant: vs_ansible = this tool's time / Ansible's, per round
    return {"vs_ansible": sorted(ratios)[len(ratios) // 2], "vs_ansible_interval": run_bench.median_interval(ratios)}


def test_a_ratio_to_ansible_is_shown_in_times_faster_with_its_interval():
    s = _stats([1 / x for x in (14.0, 14.4, 14.6, 14.8, 15.0, 15.1, 15.3, 15.6, 16.3)])
    assert run_bench.faster_interval(s) == "14.4-15.6, 96%"


def test_why_a_miss_says_whether_15x_lies_inside_its_interval():
    inside = _stats([1 / x for x in (14.0, 14.4, 14.6, 14.8, 14.9, 15.1, 15.3, 15.6, 16.3)])
    below = _stats([1 / x for x in (12.0, 12.4, 12.6, 12.8, 13.0, 13.1, 13.3, 13.6, 14.3)])
    for s, said in ((inside, "15x lies inside it"), (below, "15x lies above it")):
        stats = {(8, case): {"inv": s, "floor25519": s} for case in run_bench.CASES}
        md, why = run_bench.analysis(stats, {}, [8], ["inv", "floor25519"], {},
                                     [(">= 15x faster than Ansible", "inv N=8 first")])
        lines = [line for line in why if line.startswith("  - inv trust-cert") and "N=8, first" in line]
        assert len(lines) == 1 and said in lines[0], why
