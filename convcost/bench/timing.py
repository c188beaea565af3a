"""The timing protocol: how one function is timed, deterministic given its clock.

The protocol follows CPython's ``timeit.Timer.autorange`` and pyperf:

1. ``warmup`` untimed calls (caches, page faults, lazy initialisation, BLAS thread start-up);
2. loop calibration: blocks of 1, 2, 5, 10, 20, 50, ... calls until one block lasts at least
   ``min_block_s`` seconds, so clock resolution and the timer call itself are negligible;
   calibration blocks are discarded, like pyperf's calibration runs;
3. ``repeats`` (at least 5) timed blocks of ``loops`` calls; each gives a per-call time
   ``block / loops`` in seconds;
4. robust summary: median and interquartile range rather than mean and standard deviation,
   because benchmark noise is one-sided (interrupts and other processes only ever add time);
   plus pyperf-style stability checks that flag, but never hide, noisy results.

Unlike pyperf, everything runs in the calling process (no worker processes, no system tuning),
so results carry that process's memory layout and whatever else the machine is doing.

This module imports neither NumPy nor threadpoolctl (machine description and calibration are
in :mod:`convcost.bench.machine`): convcost's analysis paths must work, and import fast,
without NumPy.
"""

from __future__ import annotations

import gc
import itertools
import math
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

__all__ = [
    "DEFAULT_POLICY",
    "MIN_REPEATS",
    "PROBE_TOLERANCE",
    "Measurement",
    "Probe",
    "Timer",
    "TimingPolicy",
    "agree_mostly",
    "format_seconds",
    "measure",
    "probe_agreement",
    "probes_agree",
]

#: A clock returning seconds as a float; only differences between calls are used.
Timer = Callable[[], float]

#: Fewer blocks make the median and quartiles meaningless (with 5 they are order statistics).
MIN_REPEATS = 5

#: A GEMM probe: runs a short fixed matrix multiply and returns its GFLOP/s (1e9 flop/s).
Probe = Callable[[], float]

#: Two probes bracketing a block agree when they differ by at most this share of the faster.
PROBE_TOLERANCE = 0.10

#: Loop calibration gives up here; only reachable with a clock that does not advance.
_MAX_LOOPS = 10**8


@dataclass(frozen=True)
class TimingPolicy:
    """How :func:`measure` spends its time. All durations are in seconds."""

    #: Untimed calls before calibration.
    warmup: int = 1
    #: Calibrate loops until one measurement block lasts at least this long (seconds).
    min_block_s: float = 0.05
    #: Timed blocks; at least :data:`MIN_REPEATS`.
    repeats: int = 5
    #: Total time budget per measured function (seconds), warm-up included. Repeats are cut
    #: first (down to 5), then loops (down to 1); if 5 x 1 still does not fit it is run anyway
    #: and the measurement is marked ``over_budget``.
    budget_s: float | None = None
    #: A measurement is unstable when IQR / median exceeds this.
    unstable_iqr_ratio: float = 0.10
    #: A measurement is unstable when slowest / fastest per-call time exceeds this.
    unstable_spread_ratio: float = 1.5

    def __post_init__(self) -> None:
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        if not (self.min_block_s > 0 and math.isfinite(self.min_block_s)):
            raise ValueError(f"min_block_s must be a positive number of seconds, got {self.min_block_s}")
        if self.repeats < MIN_REPEATS:
            raise ValueError(
                f"repeats must be at least {MIN_REPEATS} (median and IQR need that many blocks), "
                f"got {self.repeats}"
            )
        if self.budget_s is not None and not (self.budget_s > 0 and math.isfinite(self.budget_s)):
            raise ValueError(f"budget_s must be positive seconds or None, got {self.budget_s}")
        if not self.unstable_iqr_ratio > 0:
            raise ValueError(f"unstable_iqr_ratio must be positive, got {self.unstable_iqr_ratio}")
        if not self.unstable_spread_ratio >= 1:
            raise ValueError(f"unstable_spread_ratio must be >= 1, got {self.unstable_spread_ratio}")


DEFAULT_POLICY = TimingPolicy()


@dataclass(frozen=True)
class Measurement:
    """Per-call timing of one function. All times are seconds per call."""

    median_s: float
    #: Interquartile range Q3 - Q1 of per-call times (seconds); quartiles use
    #: ``statistics.quantiles(method="inclusive")``, i.e. linear interpolation between
    #: order statistics, the same as NumPy's default ``percentile``.
    iqr_s: float
    min_s: float
    max_s: float
    repeats: int
    #: Calls per timed block.
    loops: int
    #: False when IQR / median or max / min exceed the policy's thresholds.
    stable: bool
    #: Human-readable reasons: instability, budget cuts, blocks shorter than ``min_block_s``.
    warnings: tuple[str, ...]
    #: True when even 5 blocks of 1 call did not fit the budget, or the run overshot it by > 10 %.
    over_budget: bool = False
    #: The per-call time of every timed block, in execution order (seconds).
    values_s: tuple[float, ...] = ()
    #: Process CPU seconds of every timed block (whole block, all threads); empty without a
    #: CPU clock.
    cpu_s: tuple[float, ...] = ()
    #: GEMM probe readings (GFLOP/s) before the first timed block and after each one
    #: (``repeats + 1`` values); empty without a probe.
    probes: tuple[float, ...] = ()

    @property
    def block_s(self) -> tuple[float, ...]:
        """Wall seconds of every timed block."""
        return tuple(value * self.loops for value in self.values_s)

    @property
    def probes_agree(self) -> bool:
        """True when most timed blocks' probes agree (see :func:`probe_agreement`); True
        without probes."""
        return agree_mostly(probe_agreement(self.probes))


def probes_agree(before: float, after: float, tolerance: float = PROBE_TOLERANCE) -> bool:
    """Whether two probe readings (GFLOP/s) bracketing a block agree within ``tolerance``."""
    fast = max(before, after)
    return fast > 0 and (fast - min(before, after)) <= tolerance * fast


def probe_agreement(probes: tuple[float, ...] | list[float],
                    tolerance: float = PROBE_TOLERANCE) -> list[bool]:
    """Per block bracketed by consecutive ``probes``: did its two probes agree?"""
    return [probes_agree(a, b, tolerance) for a, b in zip(probes, probes[1:])]


def agree_mostly(agreement: list[bool]) -> bool:
    """More than half of the blocks agree (True for no blocks)."""
    return not agreement or 2 * sum(agreement) > len(agreement)


def _loop_counts() -> Iterator[int]:
    """1, 2, 5, 10, 20, 50, ... (the sequence ``timeit.Timer.autorange`` uses)."""
    for exponent in itertools.count():
        for mantissa in (1, 2, 5):
            yield mantissa * 10**exponent


def _time_block(fn: Callable[[], object], loops: int, timer: Timer) -> float:
    """Seconds taken by ``loops`` back-to-back calls of ``fn``."""
    # Like timeit (and `pyperf timeit`), keep the cyclic GC out of the timed region so that a
    # collection triggered by earlier allocations is not billed to whichever block it hits.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = timer()
        for _ in itertools.repeat(None, loops):
            fn()
        return timer() - start
    finally:
        if gc_was_enabled:
            gc.enable()


def format_seconds(seconds: float) -> str:
    """Seconds in a readable unit."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def measure(
    fn: Callable[[], object],
    policy: TimingPolicy = DEFAULT_POLICY,
    timer: Timer = time.perf_counter,
    *,
    cpu_clock: Timer | None = None,
    probe: Probe | None = None,
) -> Measurement:
    """Time ``fn()`` per call (seconds) with warm-up, loop calibration and repeated blocks.

    Deterministic given ``timer``: the only inputs are the durations the clock reports.
    The warm-up phase is bracketed by the clock once, for budget accounting only; its
    duration never enters calibration or the statistics. With ``cpu_clock`` (process CPU
    seconds) each timed block's CPU time is recorded too; with ``probe`` a GEMM probe runs
    before the first timed block and after every one (not billed to the budget).
    """
    budget = policy.budget_s
    notes: list[str] = []

    start = timer()
    for _ in range(policy.warmup):
        fn()
    spent = timer() - start
    # Start the timed phase with set-up's garbage collected (it is young: generations 0 and
    # 1). Not a full collection: with torch loaded that costs about 0.1 s per measurement,
    # and the timed blocks run with the collector off anyway.
    gc.collect(1)

    # --- loop calibration (autorange); these blocks are discarded -----------------------
    counts = _loop_counts()
    loops = next(counts)
    while True:
        block = _time_block(fn, loops, timer)
        spent += block
        if block >= policy.min_block_s:
            break
        following = next(counts)
        if following > _MAX_LOOPS:
            notes.append(f"loop calibration stopped at {loops} loops: clock barely advances")
            break
        if budget is not None and block > 0:
            # The next calibration block plus the 5 blocks we must then measure at that count.
            per_call = block / loops
            if spent + (1 + MIN_REPEATS) * following * per_call > budget:
                break
        loops = following
    per_call_est = block / loops

    # --- fit repeats, then loops, into what is left of the budget ------------------------
    repeats = policy.repeats
    over_budget = False
    if budget is not None:
        remaining = budget - spent
        if repeats * loops * per_call_est > remaining:
            fitting = int(remaining // (loops * per_call_est)) if per_call_est > 0 else repeats
            if fitting >= MIN_REPEATS:
                repeats = fitting
            else:
                repeats = MIN_REPEATS
                candidates = list(itertools.takewhile(lambda n: n <= loops, _loop_counts()))
                fitting_loops = [n for n in candidates if MIN_REPEATS * n * per_call_est <= remaining]
                loops = max(fitting_loops) if fitting_loops else 1
                if not fitting_loops:
                    over_budget = True
            if repeats < policy.repeats:
                notes.append(f"budget {format_seconds(budget)}: repeats cut from {policy.repeats} to {repeats}")
    if loops * per_call_est < policy.min_block_s and per_call_est > 0:
        notes.append(
            f"blocks of ~{format_seconds(loops * per_call_est)} are shorter than min_block_s "
            f"{format_seconds(policy.min_block_s)} ({loops} loops)"
        )

    # --- timed blocks ---------------------------------------------------------------------
    values: list[float] = []
    cpu: list[float] = []
    probes: list[float] = [probe()] if probe is not None else []
    for _ in range(repeats):
        cpu_start = cpu_clock() if cpu_clock is not None else 0.0
        block = _time_block(fn, loops, timer)
        if cpu_clock is not None:
            cpu.append(cpu_clock() - cpu_start)
        if probe is not None:
            probes.append(probe())
        spent += block
        values.append(block / loops)
    if budget is not None and spent > 1.1 * budget:
        over_budget = True
    if over_budget and budget is not None:
        notes.append(
            f"over budget: took {format_seconds(spent)} (warm-up and calibration included) "
            f"for a budget of {format_seconds(budget)}; ran {repeats} x {loops}"
        )

    # --- statistics -----------------------------------------------------------------------
    median = statistics.median(values)
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    iqr = q3 - q1
    lo, hi = min(values), max(values)
    stable = True
    if median <= 0:
        stable = False
        notes.append("clock did not advance: per-call time is zero or negative")
    else:
        if iqr / median > policy.unstable_iqr_ratio:
            stable = False
            notes.append(
                f"unstable: IQR is {iqr / median:.1%} of the median "
                f"(threshold {policy.unstable_iqr_ratio:.0%})"
            )
        if lo > 0 and hi / lo > policy.unstable_spread_ratio:
            stable = False
            notes.append(
                f"unstable: slowest block is {hi / lo:.2f}x the fastest "
                f"(threshold {policy.unstable_spread_ratio:g}x)"
            )
    return Measurement(
        median_s=median,
        iqr_s=iqr,
        min_s=lo,
        max_s=hi,
        repeats=repeats,
        loops=loops,
        stable=stable,
        warnings=tuple(notes),
        over_budget=over_budget,
        values_s=tuple(values),
        cpu_s=tuple(cpu),
        probes=tuple(probes),
    )
