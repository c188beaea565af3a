"""``--bench``: run analysed models for real with NumPy and time them.

- :mod:`~convcost.bench.run`: :func:`bench_models` (the CLI's entry), :class:`BenchSettings`,
  :class:`BenchRun`, :class:`Monitor` (GEMM probes around the timed blocks, contention);
- :mod:`~convcost.bench.contention`: did other processes hold the cores (process CPU time,
  ``/proc/stat``)?
- :mod:`~convcost.bench.executor`: :class:`~convcost.bench.executor.Executor` runs a program,
  :func:`~convcost.bench.executor.estimate` says what that allocates;
- :mod:`~convcost.bench.kernels`: the NumPy kernel of every step kind;
- :mod:`~convcost.bench.timing`: the timing protocol;
- :mod:`~convcost.bench.machine`: BLAS threads, machine description, :func:`calibrate`;
- :mod:`~convcost.bench.results`: the typed results reports carry.

Importing this package does not import NumPy (the kernels and the executor are imported when
a benchmark runs).
"""

from convcost.bench.machine import Calibration, blas_threads, calibrate, machine_info
from convcost.bench.run import BenchRun, BenchSettings, Monitor, Progress, bench_models

__all__ = ["BenchRun", "BenchSettings", "Calibration", "Monitor", "Progress", "bench_models",
           "blas_threads", "calibrate", "machine_info"]
