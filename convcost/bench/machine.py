"""What a benchmark runs on: BLAS threads, the machine's description, and its roofs.

- :func:`machine_info` describes the BLAS NumPy uses (via threadpoolctl), its thread count and
  the usable CPUs; :func:`blas_threads` limits the BLAS threads inside a block.
- :func:`calibrate` measures the roofs efficiencies are relative to: the matrix-multiply peak
  per dtype (:func:`gemm_peak_gflops`) and the streaming copy bandwidth
  (:func:`memory_bandwidth_gbs`), with the protocol of :mod:`convcost.bench.timing`.

Results measured with the real clock are cached per process (and per BLAS thread count); a
call with an injected ``timer`` is never cached, so a test's fake clock cannot leak into a
later real measurement.

NumPy and threadpoolctl are imported lazily inside functions: importing this module must not
import NumPy.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from convcost.bench.results import MachineInfo, MachineRecord
from convcost.bench.timing import Probe, Timer, TimingPolicy, measure

__all__ = [
    "BLAS_RESERVE_BYTES",
    "CALIBRATION_POLICY",
    "MARGIN_BYTES",
    "EXECUTABLE_DTYPES",
    "QUICK_CALIBRATION_POLICY",
    "Calibration",
    "MachineInfo",
    "PROBE_SIZES",
    "address_space_headroom",
    "available_memory",
    "blas_threads",
    "calibrate",
    "calibration_bytes",
    "cpu_count",
    "gemm_peak_gflops",
    "gemm_probe",
    "machine_info",
    "machine_record",
    "memory_bandwidth_gbs",
]


#: dtypes NumPy can execute: float32 and float64 use BLAS, float16 NumPy's own loops.
EXECUTABLE_DTYPES = ("float32", "float64", "float16")


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


def cpu_count() -> int:
    """CPUs this process may run on (containers and taskset restrict them below
    ``os.cpu_count()``)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def machine_info() -> MachineInfo:
    """Describe the BLAS NumPy uses, its current thread count and the usable CPUs."""
    info = _numpy_blas()
    if info is None:
        return MachineInfo(blas="none", blas_arch="unknown", threads=1, cpu_count=cpu_count())
    return MachineInfo(
        blas=f"{info.get('internal_api', 'unknown')} {info.get('version') or 'unknown'}",
        blas_arch=str(info.get("architecture") or "unknown"),
        threads=int(info.get("num_threads") or 1),
        cpu_count=cpu_count(),
    )


def machine_record(dtype: str, gemm_peak: float) -> MachineRecord:
    """The typed ``machine`` record of a benchmark run at ``dtype`` (BLAS threads as now)."""
    return MachineRecord(**asdict(machine_info()), gemm_peak_gflops=gemm_peak, dtype=dtype)


@contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS to ``n`` threads inside the block and restore afterwards (also on an
    exception or Ctrl-C); None leaves it as is."""
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"BLAS thread count must be >= 1, got {n}")
    import numpy  # noqa: F401  -- the BLAS must be loaded before threadpoolctl can limit it
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield


def available_memory() -> int:
    """Bytes of RAM available to new allocations (MemAvailable on Linux)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


#: Address space kept free under ``ulimit -v`` beyond a model's estimate: OpenBLAS maps a
#: 32 MiB work buffer on its first call and exits the process (no MemoryError) when it cannot;
#: the rest covers the GEMM probe and the interpreter's own growth.
BLAS_RESERVE_BYTES = 48 * 2**20
#: What is kept free once BLAS has run (its buffer mapped): the interpreter's own growth.
MARGIN_BYTES = 16 * 2**20


def address_space_headroom(status: str = "/proc/self/status") -> int | None:
    """Bytes this process may still map under its address-space limit (``ulimit -v``,
    RLIMIT_AS) minus what it maps now (VmSize), or None when there is no limit."""
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft < 0:
        return None
    mapped = 0
    try:
        with open(status, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmSize:"):
                    mapped = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, soft - mapped)


# --------------------------------------------------------------------------------------------
# Calibration: GEMM peak and memory bandwidth

#: Matmuls and copies are long, steady operations: 20 ms blocks are far above clock resolution.
#: The 1.5 s budget caps each measured function, e.g. the n=1536 float64 GEMM on one thread
#: (~0.14 s per call, 7 calls with warm-up and calibration).
CALIBRATION_POLICY = TimingPolicy(warmup=1, min_block_s=0.02, repeats=5, budget_s=1.5)
#: For ``calibrate(quick=True)``: 10 ms blocks, 0.5 s per measured function at most.
QUICK_CALIBRATION_POLICY = TimingPolicy(warmup=1, min_block_s=0.01, repeats=5, budget_s=0.5)

#: Square sizes per dtype. float32/float64 go through BLAS and reach their plateau by n ~ 1000
#: (on the 2-core dev VM n=2048 gained nothing over 1536 and cost ~1 s per dtype);
#: NumPy's float16 matmul is a scalar loop (~0.5 GFLOP/s), so it gets one small size.
GEMM_SIZES: dict[str, tuple[int, ...]] = {
    "float32": (512, 1024, 1536),
    "float64": (512, 1024, 1536),
    "float16": (128,),
}
GEMM_SIZES_QUICK: dict[str, tuple[int, ...]] = {
    "float32": (512, 1024),
    "float64": (512, 1024),
    "float16": (128,),
}

#: Source array size for the copy benchmark; 8x a 32 MiB L3, so the copy streams from DRAM.
BANDWIDTH_BYTES = 256 * 2**20
BANDWIDTH_BYTES_QUICK = 64 * 2**20


@dataclass(frozen=True)
class Calibration:
    """Measured ceilings of this machine, for roofline comparisons."""

    machine: MachineInfo
    #: Best median GFLOP/s (1e9 flop/s, 2 n^3 flop per n x n matmul) per dtype name.
    gemm_peak_gflops: dict[str, float]
    #: Single-thread streaming copy, read + write bytes, GB/s (1e9 bytes/s).
    memory_bandwidth_gbs: float
    #: Notes from the underlying measurements (instability, budget cuts).
    warnings: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The ``machine`` and ``calibration`` members of a ``convcost/1`` document (the
        machine's ``gemm_peak_gflops`` is float32's, else the first dtype's)."""
        peaks = dict(self.gemm_peak_gflops)
        first = next(iter(peaks.values()), 0.0)
        return {"machine": {**self.machine.to_json(),
                            "gemm_peak_gflops": peaks.get("float32", first)},
                "calibration": {"gemm_peak_gflops": peaks,
                                "memory_bandwidth_gbs": self.memory_bandwidth_gbs,
                                "warnings": list(self.warnings)}}


def _check_dtype(dtype: str) -> None:
    if dtype not in EXECUTABLE_DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; expected one of "
                         f"{sorted(EXECUTABLE_DTYPES)}")


#: Real-clock results: (what, arguments..., BLAS threads) -> (value, notes).
_CACHE: dict[tuple[Any, ...], tuple[float, tuple[str, ...]]] = {}


def _cached(key: tuple[Any, ...], timer: Timer | None,
            compute: Callable[[Timer], tuple[float, tuple[str, ...]]]
            ) -> tuple[float, tuple[str, ...]]:
    """``compute(clock)``, cached under ``key`` + the BLAS thread count unless ``timer`` is
    injected."""
    if timer is not None:
        return compute(timer)
    full = (*key, machine_info().threads)
    found = _CACHE.get(full)
    if found is None:
        found = _CACHE[full] = compute(time.perf_counter)
    return found


def _gemm_peak(dtype: str, policy: TimingPolicy, sizes: tuple[int, ...],
               timer: Timer) -> tuple[float, tuple[str, ...]]:
    import numpy as np

    rng = np.random.default_rng(0)
    best = 0.0
    notes: list[str] = []
    for n in sizes:
        # Normal data: no denormals, no zeros that a clever kernel could skip.
        a = rng.standard_normal((n, n), dtype=np.float32).astype(dtype)
        b = rng.standard_normal((n, n), dtype=np.float32).astype(dtype)
        c = np.empty((n, n), dtype=dtype)  # preallocated: time the GEMM, not the allocator
        m = measure(partial(np.matmul, a, b, out=c), policy, timer)
        if m.median_s > 0:
            best = max(best, 2.0 * n**3 / m.median_s / 1e9)
        notes.extend(f"gemm {dtype} n={n}: {w}" for w in m.warnings)
    return best, tuple(notes)


def _gemm_cached(dtype: str, policy: TimingPolicy, sizes: tuple[int, ...],
                 timer: Timer | None) -> tuple[float, tuple[str, ...]]:
    """The GEMM peak of ``dtype`` over ``sizes`` and its notes, through the cache."""
    _check_dtype(dtype)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive integers, got {sizes}")
    return _cached(("gemm", dtype, policy, sizes), timer,
                   lambda clock: _gemm_peak(dtype, policy, sizes, clock))


def gemm_peak_gflops(dtype: str, policy: TimingPolicy = CALIBRATION_POLICY,
                     sizes: Sequence[int] | None = None, timer: Timer | None = None) -> float:
    """Best median GFLOP/s of square ``np.matmul`` over ``sizes`` at the current BLAS threads.

    Counts 2 n^3 flop per n x n product; 1 GFLOP/s = 1e9 flop/s. Cached per process unless
    ``timer`` is given.
    """
    _check_dtype(dtype)
    chosen = tuple(sizes) if sizes is not None else GEMM_SIZES[dtype]
    return _gemm_cached(dtype, policy, chosen, timer)[0]


def calibration_bytes(dtype: str) -> int:
    """Bytes :func:`gemm_peak_gflops` allocates at ``dtype`` with its default sizes: three
    n x n matrices, and the float32 draw of one."""
    _check_dtype(dtype)
    n = max(GEMM_SIZES[dtype])
    itemsize = {"float16": 2, "float32": 4, "float64": 8}[dtype]
    return n * n * (3 * itemsize + 4)


#: Square size of the GEMM probe per dtype: ~1 ms per matmul at this machine's peak (float16
#: is a scalar loop, ~0.5 GFLOP/s), so three of them stay within the 1-5 ms a probe may take.
PROBE_SIZES: dict[str, int] = {"float32": 384, "float64": 256, "float16": 64}
#: Matmuls per probe; the fastest counts (noise only ever adds time).
PROBE_CALLS = 3


def gemm_probe(dtype: str, timer: Timer = time.perf_counter) -> Probe:
    """A short GEMM probe at ``dtype``: each call times :data:`PROBE_CALLS` square matmuls of
    :data:`PROBE_SIZES` and returns the fastest one's GFLOP/s (0.0 if the clock did not
    advance). The matrices are allocated once, here."""
    _check_dtype(dtype)
    import numpy as np

    n = PROBE_SIZES[dtype]
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n), dtype=np.float32).astype(dtype)
    b = rng.standard_normal((n, n), dtype=np.float32).astype(dtype)
    c = np.empty((n, n), dtype=dtype)
    flops = 2.0 * n**3

    def probe() -> float:
        best = math.inf
        for _ in range(PROBE_CALLS):
            start = timer()
            np.matmul(a, b, out=c)
            best = min(best, timer() - start)
        return flops / best / 1e9 if best > 0 else 0.0

    return probe


def _bandwidth(policy: TimingPolicy, nbytes: int, timer: Timer) -> tuple[float, tuple[str, ...]]:
    import numpy as np

    n = max(nbytes // 8, 1)
    src = np.full(n, 1.0)
    dst = np.empty(n)
    dst.fill(0.0)  # fault the pages in now so no block pays for first-touch
    m = measure(lambda: np.copyto(dst, src), policy, timer)
    # Counted as read + write. Large copies use non-temporal stores, so there is no extra
    # read-for-ownership of the destination to count.
    gbs = 2.0 * src.nbytes / m.median_s / 1e9 if m.median_s > 0 else 0.0
    return gbs, tuple(f"bandwidth: {w}" for w in m.warnings)


def _bandwidth_cached(policy: TimingPolicy, nbytes: int, timer: Timer | None,
                      name: str) -> tuple[float, tuple[str, ...]]:
    """The copy bandwidth of ``nbytes``-byte arrays and its notes, through the cache
    (``name``: the argument named in the error for a size below 1)."""
    if nbytes < 1:
        raise ValueError(f"{name} must be positive, got {nbytes}")
    return _cached(("bandwidth", policy, nbytes), timer,
                   lambda clock: _bandwidth(policy, nbytes, clock))


def memory_bandwidth_gbs(policy: TimingPolicy = CALIBRATION_POLICY,
                         nbytes: int = BANDWIDTH_BYTES, timer: Timer | None = None) -> float:
    """Streaming copy bandwidth in GB/s (1e9 bytes/s, read + write) of ``nbytes``-byte arrays.

    ``np.copyto`` is single-threaded, so this is one core's bandwidth, which is what NumPy's
    element-wise kernels can reach. Cached per process unless ``timer`` is given.
    """
    return _bandwidth_cached(policy, nbytes, timer, "nbytes")[0]


def calibrate(dtypes: Sequence[str] = ("float32", "float64"), policy: TimingPolicy | None = None,
              quick: bool = False, *, gemm_sizes: Mapping[str, Sequence[int]] | None = None,
              bandwidth_bytes: int | None = None, timer: Timer | None = None) -> Calibration:
    """Measure GEMM peak (GFLOP/s) per dtype and memory bandwidth (GB/s) at the current BLAS
    threads.

    Takes about 2-3 s for float32 + float64 (under 1 s with ``quick``, which uses smaller
    matrices and copies; float16 adds ~0.2 s). ``policy`` defaults to
    :data:`CALIBRATION_POLICY` or :data:`QUICK_CALIBRATION_POLICY`; ``gemm_sizes`` and
    ``bandwidth_bytes`` override the sizes measured. Cached per process and BLAS thread count
    unless ``timer`` is given.
    """
    chosen = tuple(dict.fromkeys(dtypes))  # de-duplicate, keep order
    for dtype in chosen:
        _check_dtype(dtype)
    if policy is None:
        policy = QUICK_CALIBRATION_POLICY if quick else CALIBRATION_POLICY
    default_sizes = GEMM_SIZES_QUICK if quick else GEMM_SIZES
    peaks: dict[str, float] = {}
    notes: list[str] = []
    for dtype in chosen:
        sizes = tuple(gemm_sizes[dtype]) if gemm_sizes and dtype in gemm_sizes \
            else default_sizes[dtype]
        peaks[dtype], found = _gemm_cached(dtype, policy, sizes, timer)
        notes.extend(found)
    nbytes = bandwidth_bytes if bandwidth_bytes is not None else (
        BANDWIDTH_BYTES_QUICK if quick else BANDWIDTH_BYTES)
    gbs, found = _bandwidth_cached(policy, nbytes, timer, "bandwidth_bytes")
    notes.extend(found)
    # A fresh dict each call, so a caller mutating it cannot corrupt the cache.
    return Calibration(machine=machine_info(), gemm_peak_gflops=peaks,
                       memory_bandwidth_gbs=gbs, warnings=tuple(notes))
