"""Timing protocol, BLAS thread control, machine description and roofline calibration.

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

NumPy and threadpoolctl are imported lazily inside functions: convcost's analysis paths must
work, and import fast, without NumPy.
"""

from __future__ import annotations

import gc
import itertools
import math
import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = [
    "CALIBRATION_POLICY",
    "DEFAULT_POLICY",
    "MIN_REPEATS",
    "QUICK_CALIBRATION_POLICY",
    "Calibration",
    "MachineInfo",
    "Measurement",
    "Timer",
    "TimingPolicy",
    "blas_threads",
    "calibrate",
    "clear_calibration_cache",
    "gemm_peak_gflops",
    "machine_info",
    "measure",
    "memory_bandwidth_gbs",
]

#: A clock returning seconds as a float; only differences between calls are used.
Timer = Callable[[], float]

#: Fewer blocks make the median and quartiles meaningless (with 5 they are order statistics).
MIN_REPEATS = 5

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
        if self.budget_s is not None and not self.budget_s > 0:
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


def _fmt_s(seconds: float) -> str:
    """Seconds in a readable unit."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def measure(
    fn: Callable[[], object],
    policy: TimingPolicy = DEFAULT_POLICY,
    timer: Timer = time.perf_counter,
) -> Measurement:
    """Time ``fn()`` per call (seconds) with warm-up, loop calibration and repeated blocks.

    Deterministic given ``timer``: the only inputs are the durations the clock reports.
    The warm-up phase is bracketed by the clock once, for budget accounting only; its
    duration never enters calibration or the statistics.
    """
    budget = policy.budget_s
    notes: list[str] = []

    start = timer()
    for _ in range(policy.warmup):
        fn()
    spent = timer() - start
    # Start the timed phase from a clean heap so garbage from set-up is not collected mid-run.
    gc.collect()

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
                notes.append(f"budget {_fmt_s(budget)}: repeats cut from {policy.repeats} to {repeats}")
    if loops * per_call_est < policy.min_block_s and per_call_est > 0:
        notes.append(
            f"blocks of ~{_fmt_s(loops * per_call_est)} are shorter than min_block_s "
            f"{_fmt_s(policy.min_block_s)} ({loops} loops)"
        )

    # --- timed blocks ---------------------------------------------------------------------
    values: list[float] = []
    for _ in range(repeats):
        block = _time_block(fn, loops, timer)
        spent += block
        values.append(block / loops)
    if budget is not None and spent > 1.1 * budget:
        over_budget = True
    if over_budget and budget is not None:
        notes.append(
            f"over budget: took {_fmt_s(spent)} (warm-up and calibration included) "
            f"for a budget of {_fmt_s(budget)}; ran {repeats} x {loops}"
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
    )


# --------------------------------------------------------------------------------------------
# BLAS threads and machine description
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MachineInfo:
    """What the benchmarks ran on."""

    #: ``"<internal_api> <version>"`` from threadpoolctl, e.g. ``"openblas 0.3.31.188.0"``.
    blas: str
    #: threadpoolctl's ``architecture`` (OpenBLAS kernel family, e.g. ``"Haswell"``), or ``"unknown"``.
    blas_arch: str
    #: BLAS threads in effect now.
    threads: int
    #: CPUs this process may run on (its affinity mask when the OS exposes one).
    cpu_count: int


def _numpy_blas() -> dict[str, Any] | None:
    """threadpoolctl's record of the BLAS NumPy uses, or None."""
    import numpy  # noqa: F401  -- loads the BLAS shared library so threadpoolctl can find it
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    blas = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    # SciPy or others may load a second BLAS; NumPy wheels vendor theirs under numpy.libs/.
    for info in blas:
        if "numpy" in str(info.get("filepath", "")).lower():
            return dict(info)
    return dict(blas[0]) if blas else None


def _cpu_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        # Containers and taskset restrict the usable CPUs below os.cpu_count().
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_info() -> MachineInfo:
    """Describe the BLAS NumPy uses, its current thread count and the usable CPUs."""
    info = _numpy_blas()
    if info is None:
        return MachineInfo(blas="none", blas_arch="unknown", threads=1, cpu_count=_cpu_count())
    return MachineInfo(
        blas=f"{info.get('internal_api', 'unknown')} {info.get('version') or 'unknown'}",
        blas_arch=str(info.get("architecture") or "unknown"),
        threads=int(info.get("num_threads") or 1),
        cpu_count=_cpu_count(),
    )


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS to ``n`` threads inside the block and restore afterwards; None leaves it as is."""
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"BLAS thread count must be >= 1, got {n}")
    import numpy  # noqa: F401  -- the BLAS must be loaded before threadpoolctl can limit it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


# --------------------------------------------------------------------------------------------
# Calibration: GEMM peak and memory bandwidth
# --------------------------------------------------------------------------------------------

#: Matmuls and copies are long, steady operations: 20 ms blocks are far above clock resolution.
#: The 1.5 s budget caps each measured function, e.g. the n=1536 float64 GEMM on one thread
#: (~0.14 s per call, 7 calls with warm-up and calibration).
CALIBRATION_POLICY = TimingPolicy(warmup=1, min_block_s=0.02, repeats=5, budget_s=1.5)
#: For ``calibrate(quick=True)``: 10 ms blocks, 0.5 s per measured function at most.
QUICK_CALIBRATION_POLICY = TimingPolicy(warmup=1, min_block_s=0.01, repeats=5, budget_s=0.5)

#: Square sizes per dtype. float32/float64 go through BLAS and reach their plateau by n ~ 1000
#: (on the 2-core dev VM n=2048 gained nothing over 1536 and cost ~1 s per dtype);
#: NumPy's float16 matmul is a scalar loop (~0.5 GFLOP/s), so it gets one small size.
_GEMM_SIZES: dict[str, tuple[int, ...]] = {
    "float32": (512, 1024, 1536),
    "float64": (512, 1024, 1536),
    "float16": (128,),
}
_GEMM_SIZES_QUICK: dict[str, tuple[int, ...]] = {
    "float32": (512, 1024),
    "float64": (512, 1024),
    "float16": (128,),
}

#: Source array size for the copy benchmark; 8x a 32 MiB L3, so the copy streams from DRAM.
_BANDWIDTH_BYTES = 256 * 2**20
_BANDWIDTH_BYTES_QUICK = 64 * 2**20


@dataclass(frozen=True)
class Calibration:
    """Measured ceilings of this machine, for roofline comparisons."""

    machine: MachineInfo
    #: Best median GFLOP/s (1e9 flop/s, 2 n^3 flop per n x n matmul) per dtype name.
    gemm_peak_gflops: dict[str, float]
    #: Single-thread streaming copy, read + write bytes, GB/s (1e9 bytes/s).
    memory_bandwidth_gbs: float
    #: Notes from the underlying measurements (instability, budget cuts).
    warnings: tuple[str, ...] = ()


def _check_dtype(dtype: str) -> None:
    if dtype not in _GEMM_SIZES:
        raise ValueError(f"unsupported dtype {dtype!r}; expected one of {sorted(_GEMM_SIZES)}")


def _blas_thread_key() -> int:
    """Current BLAS thread count: part of every cache key, since results depend on it."""
    return machine_info().threads


@lru_cache(maxsize=None)
def _gemm_peak_cached(
    dtype: str, policy: TimingPolicy, sizes: tuple[int, ...], threads: int
) -> tuple[float, tuple[str, ...]]:
    import numpy as np

    rng = np.random.default_rng(0)
    best = 0.0
    notes: list[str] = []
    for n in sizes:
        # Normal data: no denormals, no zeros that a clever kernel could skip.
        a = rng.standard_normal((n, n)).astype(dtype)
        b = rng.standard_normal((n, n)).astype(dtype)
        c = np.empty((n, n), dtype=dtype)  # preallocated: time the GEMM, not the allocator
        m = measure(lambda: np.matmul(a, b, out=c), policy)
        best = max(best, 2.0 * n**3 / m.median_s / 1e9)
        notes.extend(f"gemm {dtype} n={n}: {w}" for w in m.warnings)
        del a, b, c
    return best, tuple(notes)


def gemm_peak_gflops(
    dtype: str,
    policy: TimingPolicy = CALIBRATION_POLICY,
    sizes: Sequence[int] | None = None,
) -> float:
    """Best median GFLOP/s of square ``np.matmul`` over ``sizes`` at the current BLAS threads.

    Counts 2 n^3 flop per n x n product; 1 GFLOP/s = 1e9 flop/s. Cached per process.
    """
    _check_dtype(dtype)
    chosen = tuple(sizes) if sizes is not None else _GEMM_SIZES[dtype]
    if not chosen or min(chosen) < 1:
        raise ValueError(f"sizes must be positive integers, got {chosen}")
    return _gemm_peak_cached(dtype, policy, chosen, _blas_thread_key())[0]


@lru_cache(maxsize=None)
def _bandwidth_cached(policy: TimingPolicy, nbytes: int) -> tuple[float, tuple[str, ...]]:
    import numpy as np

    n = max(nbytes // 8, 1)
    src = np.full(n, 1.0)
    dst = np.empty(n)
    dst.fill(0.0)  # fault the pages in now so no block pays for first-touch
    m = measure(lambda: np.copyto(dst, src), policy)
    # Counted as read + write. Large copies use non-temporal stores, so there is no extra
    # read-for-ownership of the destination to count.
    gbs = 2.0 * src.nbytes / m.median_s / 1e9
    return gbs, tuple(f"bandwidth: {w}" for w in m.warnings)


def memory_bandwidth_gbs(
    policy: TimingPolicy = CALIBRATION_POLICY, nbytes: int = _BANDWIDTH_BYTES
) -> float:
    """Streaming copy bandwidth in GB/s (1e9 bytes/s, read + write) of ``nbytes``-byte arrays.

    ``np.copyto`` is single-threaded, so this is one core's bandwidth, which is what NumPy's
    element-wise kernels can reach. Cached per process.
    """
    if nbytes < 1:
        raise ValueError(f"nbytes must be positive, got {nbytes}")
    return _bandwidth_cached(policy, nbytes)[0]


@lru_cache(maxsize=None)
def _calibrate_cached(
    dtypes: tuple[str, ...], policy: TimingPolicy, quick: bool, threads: int
) -> tuple[MachineInfo, tuple[tuple[str, float], ...], float, tuple[str, ...]]:
    sizes = _GEMM_SIZES_QUICK if quick else _GEMM_SIZES
    peaks: list[tuple[str, float]] = []
    notes: list[str] = []
    for dtype in dtypes:
        gflops, gemm_notes = _gemm_peak_cached(dtype, policy, sizes[dtype], threads)
        peaks.append((dtype, gflops))
        notes.extend(gemm_notes)
    nbytes = _BANDWIDTH_BYTES_QUICK if quick else _BANDWIDTH_BYTES
    gbs, bw_notes = _bandwidth_cached(policy, nbytes)
    notes.extend(bw_notes)
    return machine_info(), tuple(peaks), gbs, tuple(notes)


def calibrate(
    dtypes: Sequence[str] = ("float32", "float64"),
    policy: TimingPolicy | None = None,
    quick: bool = False,
) -> Calibration:
    """Measure GEMM peak (GFLOP/s) per dtype and memory bandwidth (GB/s) at the current BLAS threads.

    Takes about 2-3 s for float32 + float64 (under 1 s with ``quick``, which uses smaller
    matrices and copies; float16 adds ~0.2 s);
    ``policy`` defaults to :data:`CALIBRATION_POLICY` or :data:`QUICK_CALIBRATION_POLICY`.
    Cached per process and per BLAS thread count.
    """
    chosen = tuple(dict.fromkeys(dtypes))  # de-duplicate, keep order
    for dtype in chosen:
        _check_dtype(dtype)
    if policy is None:
        policy = QUICK_CALIBRATION_POLICY if quick else CALIBRATION_POLICY
    machine, peaks, gbs, notes = _calibrate_cached(chosen, policy, quick, _blas_thread_key())
    # A fresh dict each call, so a caller mutating it cannot corrupt the cache.
    return Calibration(machine=machine, gemm_peak_gflops=dict(peaks), memory_bandwidth_gbs=gbs, warnings=notes)


def clear_calibration_cache() -> None:
    """Forget cached calibration results (e.g. after the machine's load has changed)."""
    _gemm_peak_cached.cache_clear()
    _bandwidth_cached.cache_clear()
    _calibrate_cached.cache_clear()
