"""The timing protocol (convcost.bench.timing) and machine description and calibration
(convcost.bench.machine): every timing through an injected clock, so nothing here depends on
how fast, or how loaded, the machine is."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from convcost.bench.machine import (
    Calibration,
    blas_threads,
    calibrate,
    gemm_peak_gflops,
    machine_info,
    machine_record,
    memory_bandwidth_gbs,
)
from convcost.bench.timing import MIN_REPEATS, Measurement, TimingPolicy, measure

# Durations below are multiples of powers of two so that clock arithmetic is exact in binary
# floating point and results can be compared with ==.
T = 2.0**-8  # 3.90625 ms


class FakeClock:
    """A clock that only moves when the scripted function runs."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Scripted:
    """A function whose n-th call takes ``durations[n]`` seconds of fake time (last one repeats)."""

    def __init__(self, clock: FakeClock, durations: Sequence[float]) -> None:
        self.clock = clock
        self.durations = list(durations)
        self.calls = 0

    def __call__(self) -> None:
        index = min(self.calls, len(self.durations) - 1)
        self.clock.now += self.durations[index]
        self.calls += 1


def run(durations: Sequence[float], policy: TimingPolicy) -> tuple[Measurement, Scripted]:
    clock = FakeClock()
    fn = Scripted(clock, durations)
    return measure(fn, policy, timer=clock), fn


# --- loop calibration ---------------------------------------------------------------------


def test_loops_follow_autorange_sequence_until_block_reaches_min_block() -> None:
    # 1/1024 s per call, 40 ms blocks wanted: 1, 2, 5, 10, 20 calls are too short, 50 suffice.
    per_call = 2.0**-10
    m, fn = run([per_call], TimingPolicy(warmup=0, min_block_s=0.04, repeats=5))
    assert m.loops == 50
    assert m.repeats == 5
    # calibration blocks (1+2+5+10+20+50) are run but discarded, then 5 blocks of 50
    assert fn.calls == (1 + 2 + 5 + 10 + 20 + 50) + 5 * 50
    assert m.values_s == (per_call,) * 5
    assert m.median_s == m.min_s == m.max_s == per_call
    assert m.iqr_s == 0.0
    assert m.stable and m.warnings == () and not m.over_budget


def test_one_loop_when_a_single_call_is_long_enough() -> None:
    m, fn = run([0.5], TimingPolicy(warmup=0, min_block_s=0.05, repeats=5))
    assert (m.loops, m.repeats, fn.calls) == (1, 5, 1 + 5)


def test_per_call_time_is_block_divided_by_loops() -> None:
    # calibration: 1 call (T), 2 calls (2T), 5 calls (5T >= 4T) -> 5 loops
    calib = [T] * (1 + 2 + 5)
    # 5 blocks of 5 calls; the 2nd block has one call 5T slower, i.e. +1T per call on average
    blocks = [T] * 5 + [T] * 4 + [6 * T] + [T] * 15
    m, _ = run(calib + blocks, TimingPolicy(warmup=0, min_block_s=4 * T, repeats=5))
    assert m.loops == 5
    assert m.values_s == (T, 2 * T, T, T, T)
    assert m.median_s == T
    assert m.max_s == 2 * T


def test_measure_is_deterministic_with_an_injected_clock() -> None:
    script = [T, 3 * T, 2 * T, 5 * T, T, 7 * T, 2 * T] * 40
    policy = TimingPolicy(warmup=2, min_block_s=8 * T, repeats=7)
    assert run(script, policy)[0] == run(script, policy)[0]


# --- statistics ---------------------------------------------------------------------------


def test_median_and_iqr_match_hand_computed_values_odd_count() -> None:
    # warm-up 100 s, calibration block of 1 call (1 s >= min_block), then 5 timed blocks
    values = [0.25, 0.5, 0.375, 1.0, 0.3125]
    m, _ = run([100.0, 1.0, *values], TimingPolicy(warmup=1, min_block_s=0.2, repeats=5))
    # sorted: 0.25 0.3125 0.375 0.5 1.0 -> median is the 3rd; inclusive quartiles of 5 values
    # sit exactly on the 2nd and 4th order statistics
    assert m.values_s == tuple(values)
    assert m.median_s == 0.375
    assert m.iqr_s == 0.5 - 0.3125
    assert (m.min_s, m.max_s) == (0.25, 1.0)


def test_median_and_iqr_match_hand_computed_values_even_count() -> None:
    values = [v * 0.125 for v in (6, 1, 5, 2, 4, 3)]
    m, _ = run([1.0, *values], TimingPolicy(warmup=0, min_block_s=0.1, repeats=6))
    # sorted 1..6 (x 1/8). median (3+4)/2 = 3.5. Inclusive quartiles: position (n-1)p from 0,
    # Q1 at 1.25 -> 2 + 0.25*(3-2) = 2.25, Q3 at 3.75 -> 4 + 0.75*(5-4) = 4.75, IQR 2.5
    assert m.median_s == 3.5 * 0.125
    assert m.iqr_s == 2.5 * 0.125
    assert (m.min_s, m.max_s) == (0.125, 0.75)


def test_stable_when_blocks_agree() -> None:
    m, _ = run([1.0, 1.0, 1.0, 1.03125, 1.0, 1.0], TimingPolicy(warmup=0, min_block_s=0.5))
    assert m.stable
    assert m.warnings == ()


def test_unstable_when_iqr_is_large_relative_to_median() -> None:
    # sorted 1, 1, 1.25, 1.25, 1.25: IQR 0.25 = 20 % of the median 1.25; max/min only 1.25
    m, _ = run([1.0, 1.0, 1.25, 1.0, 1.25, 1.25], TimingPolicy(warmup=0, min_block_s=0.5))
    assert not m.stable
    assert len(m.warnings) == 1 and "IQR" in m.warnings[0]


def test_unstable_when_max_over_min_spread_is_large() -> None:
    # one 2x outlier: IQR is 0, but max/min = 2 > 1.5
    m, _ = run([1.0, 1.0, 1.0, 2.0, 1.0, 1.0], TimingPolicy(warmup=0, min_block_s=0.5))
    assert m.iqr_s == 0.0
    assert not m.stable
    assert len(m.warnings) == 1 and "slowest" in m.warnings[0]


def test_instability_thresholds_come_from_the_policy() -> None:
    script = [1.0, 1.0, 1.0, 1.25, 1.0, 1.25, 1.25]
    lax = TimingPolicy(warmup=0, min_block_s=0.5, unstable_iqr_ratio=0.25)
    assert run(script, lax)[0].stable
    strict = TimingPolicy(warmup=0, min_block_s=0.5, unstable_spread_ratio=1.2)
    assert not run([1.0] * 5 + [1.25] * 2, strict)[0].stable


# --- warm-up ------------------------------------------------------------------------------


def test_warmup_calls_happen_and_are_not_timed() -> None:
    # three very slow warm-up calls, then a steady 0.5 s per call
    m, fn = run([100.0, 100.0, 100.0, 0.5], TimingPolicy(warmup=3, min_block_s=0.25, repeats=5))
    assert fn.calls == 3 + 1 + 5  # warm-up, one calibration block of 1, five timed blocks
    assert m.values_s == (0.5,) * 5
    assert m.max_s == 0.5
    assert m.stable


def test_no_warmup_means_the_first_call_is_calibration() -> None:
    m, fn = run([100.0, 0.5], TimingPolicy(warmup=0, min_block_s=0.25, repeats=5))
    assert fn.calls == 1 + 5
    assert m.values_s == (0.5,) * 5  # the slow first call was the (discarded) calibration block


# --- budget -------------------------------------------------------------------------------


def test_budget_cuts_repeats_first() -> None:
    # 1 s calibration block, then 15 of the 20 asked-for repeats fit into 16 s
    m, fn = run([1.0], TimingPolicy(warmup=0, min_block_s=0.5, repeats=20, budget_s=16.0))
    assert (m.loops, m.repeats) == (1, 15)
    assert fn.calls == 1 + 15
    assert not m.over_budget
    assert any("repeats cut from 20 to 15" in w for w in m.warnings)


def test_budget_stops_loop_calibration_early() -> None:
    # 2 x 1 s blocks would be wanted at 2 loops, but 1 + 2 + 5 x 2 calls exceed 8 s
    m, fn = run([1.0], TimingPolicy(warmup=0, min_block_s=1.5, repeats=5, budget_s=8.0))
    assert (m.loops, m.repeats) == (1, 5)
    assert fn.calls == 1 + 5
    assert not m.over_budget
    assert any("shorter than min_block_s" in w for w in m.warnings)


def test_budget_cuts_loops_when_five_full_blocks_no_longer_fit() -> None:
    # Calls slow down from T to 2T during calibration, so 5 blocks of the calibrated 5 loops no
    # longer fit: loops drop to 2 and repeats stay at the floor of 5.
    script = [T] * (1 + 2) + [2 * T] * (5 + 5 * 5)
    policy = TimingPolicy(warmup=0, min_block_s=0.03, repeats=5, budget_s=0.15)
    m, fn = run(script, policy)
    assert (m.loops, m.repeats) == (2, 5)
    assert fn.calls == 1 + 2 + 5 + 5 * 2
    assert m.median_s == 2 * T
    assert not m.over_budget
    assert any("shorter than min_block_s" in w for w in m.warnings)


def test_over_budget_still_runs_five_blocks_of_one_call_and_says_so() -> None:
    m, fn = run([1.0], TimingPolicy(warmup=1, min_block_s=0.05, repeats=10, budget_s=2.0))
    assert (m.loops, m.repeats) == (1, MIN_REPEATS)
    assert fn.calls == 1 + 1 + 5
    assert m.over_budget
    assert any("over budget" in w for w in m.warnings)
    assert m.median_s == 1.0


@pytest.mark.parametrize("budget", [T, 10 * T, 30 * T, 100 * T, 300 * T, 1000 * T])
@pytest.mark.parametrize("warmup", [0, 3])
def test_budget_never_goes_below_five_repeats_of_one_loop(budget: float, warmup: int) -> None:
    m, _ = run([T], TimingPolicy(warmup=warmup, min_block_s=64 * T, repeats=9, budget_s=budget))
    assert m.repeats >= MIN_REPEATS
    assert m.loops >= 1
    assert len(m.values_s) == m.repeats


def test_budget_is_respected_when_it_can_be() -> None:
    clock = FakeClock()
    fn = Scripted(clock, [T])
    m = measure(fn, TimingPolicy(warmup=2, min_block_s=64 * T, repeats=9, budget_s=200 * T), timer=clock)
    assert clock.now <= 200 * T
    assert not m.over_budget


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("repeats", [0, 1, 4])
def test_fewer_than_five_repeats_is_rejected(repeats: int) -> None:
    with pytest.raises(ValueError, match="repeats must be at least 5"):
        TimingPolicy(repeats=repeats)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"warmup": -1},
        {"min_block_s": 0.0},
        {"min_block_s": float("inf")},
        {"budget_s": 0.0},
        {"budget_s": float("inf")},
        {"budget_s": float("nan")},
        {"unstable_iqr_ratio": 0.0},
        {"unstable_spread_ratio": 0.9},
    ],
)
def test_other_invalid_policies_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TimingPolicy(**kwargs)  # type: ignore[arg-type]


# --- machine, BLAS threads, calibration ---------------------------------------------------


def test_importing_bench_does_not_import_numpy() -> None:
    code = ("import sys, convcost.bench, convcost.bench.timing, convcost.bench.machine, "
            "convcost.bench.run; assert 'numpy' not in sys.modules, 'numpy imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_machine_info_fields_are_populated() -> None:
    info = machine_info()
    assert info.blas and info.blas != "none"
    assert len(info.blas.split()) >= 2  # "<implementation> <version>"
    assert info.blas_arch
    assert info.threads >= 1
    assert info.cpu_count >= 1
    record = machine_record("float16", 12.5)
    assert (record.blas, record.threads, record.dtype, record.gemm_peak_gflops) == \
        (info.blas, info.threads, "float16", 12.5)


def _reported_blas_threads() -> list[int]:
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]


def test_blas_threads_limits_and_restores() -> None:
    before = _reported_blas_threads()
    assert before
    with blas_threads(1):
        assert _reported_blas_threads() == [1] * len(before)
        assert machine_info().threads == 1
    assert _reported_blas_threads() == before
    with blas_threads(None):
        assert _reported_blas_threads() == before


def test_blas_threads_restores_after_an_interrupt() -> None:
    before = _reported_blas_threads()
    with pytest.raises(KeyboardInterrupt), blas_threads(1):
        raise KeyboardInterrupt
    assert _reported_blas_threads() == before


def test_blas_threads_rejects_zero() -> None:
    with pytest.raises(ValueError), blas_threads(0):
        pass


class Ticking:
    """A clock that advances ``tick`` seconds per reading: every block lasts one tick."""

    def __init__(self, tick: float) -> None:
        self.tick = tick
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


TINY = TimingPolicy(warmup=0, min_block_s=T, repeats=5)


def test_gemm_peak_arithmetic_with_an_injected_clock() -> None:
    # One tick per block of one call: 2 n^3 flop per T seconds, best over the sizes.
    assert gemm_peak_gflops("float32", TINY, sizes=(8, 16), timer=Ticking(T)) == \
        2 * 16**3 / T / 1e9
    assert gemm_peak_gflops("float16", TINY, sizes=(4,), timer=Ticking(T)) == 2 * 4**3 / T / 1e9


def test_bandwidth_arithmetic_with_an_injected_clock() -> None:
    # read + write of 8 KiB per T seconds
    assert memory_bandwidth_gbs(TINY, nbytes=8192, timer=Ticking(T)) == 2 * 8192 / T / 1e9


def test_calibrate_with_an_injected_clock() -> None:
    cal = calibrate(("float32", "float64", "float32"), TINY, gemm_sizes={"float32": (8,),
                                                                         "float64": (4, 8)},
                    bandwidth_bytes=4096, timer=Ticking(T))
    assert isinstance(cal, Calibration)
    assert cal.gemm_peak_gflops == {"float32": 2 * 8**3 / T / 1e9, "float64": 2 * 8**3 / T / 1e9}
    assert cal.memory_bandwidth_gbs == 2 * 4096 / T / 1e9
    assert cal.machine.threads >= 1
    document = cal.to_json()
    assert set(document) == {"machine", "calibration"}
    assert document["machine"]["gemm_peak_gflops"] == cal.gemm_peak_gflops["float32"]
    assert document["calibration"]["gemm_peak_gflops"] == cal.gemm_peak_gflops
    assert document["calibration"]["memory_bandwidth_gbs"] == cal.memory_bandwidth_gbs


def test_calibration_json_validates(validate: Callable[[Any], None]) -> None:
    cal = calibrate(("float16",), TINY, gemm_sizes={"float16": (4,)}, bandwidth_bytes=64,
                    timer=Ticking(T))
    document = {"schema": "convcost/1", "models": [], "errors": [], **cal.to_json()}
    validate(document)
    # float32 missing: the machine's peak is the first dtype's
    assert document["machine"]["gemm_peak_gflops"] == cal.gemm_peak_gflops["float16"]


def test_real_clock_results_are_cached_and_fake_clocks_never_are() -> None:
    first = gemm_peak_gflops("float64", TINY, sizes=(4,))
    assert first > 0
    assert gemm_peak_gflops("float64", TINY, sizes=(4,)) == first  # cached
    # An injected clock neither reads nor fills the cache.
    assert gemm_peak_gflops("float64", TINY, sizes=(4,), timer=Ticking(1.0)) == 2 * 64 / 1e9
    assert gemm_peak_gflops("float64", TINY, sizes=(4,)) == first
    cal = calibrate(("float64",), TINY, gemm_sizes={"float64": (4,)}, bandwidth_bytes=64)
    cal.gemm_peak_gflops["float64"] = -1.0  # the caller's own dict
    assert calibrate(("float64",), TINY, gemm_sizes={"float64": (4,)},
                     bandwidth_bytes=64).gemm_peak_gflops["float64"] == first


def test_unknown_dtype_is_rejected() -> None:
    with pytest.raises(ValueError, match="unsupported dtype"):
        gemm_peak_gflops("int8")
    with pytest.raises(ValueError, match="unsupported dtype"):
        calibrate(("float32", "bfloat16"), quick=True)
    with pytest.raises(ValueError, match="positive"):
        gemm_peak_gflops("float32", sizes=(0,))
    with pytest.raises(ValueError, match="positive"):
        memory_bandwidth_gbs(nbytes=0)
