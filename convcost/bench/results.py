"""Typed results of ``--bench``: what a model's report carries once it has been measured.

These are plain values (no NumPy), so reports, comparisons and renderers read them without
importing the benchmark machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LayerBench:
    """One step's in-place time (seconds per batch) and what it achieved."""

    median_s: float
    iqr_s: float
    #: Achieved GFLOP/s (1e9 FLOP/s, 2·MACs per time); 0 for steps without MACs.
    gflops: float
    #: ``gflops`` / the machine's matrix-multiply peak; None without MACs or a usable peak.
    efficiency: float | None
    #: The kernel that ran (``gemm``, ``shifted-gemm``, ``im2col-gemm``, ``direct``, ...).
    algorithm: str
    stable: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "iqr_s": self.iqr_s, "gflops": self.gflops,
                "efficiency": self.efficiency, "algorithm": self.algorithm,
                "stable": self.stable}


@dataclass(frozen=True, slots=True)
class ModelBench:
    """A whole chain's measurement (seconds per batch) and its steps' in-place times."""

    median_s: float
    iqr_s: float
    repeats: int
    loops: int
    gflops: float
    stable: bool
    warnings: tuple[str, ...]
    layers: tuple[LayerBench, ...]
    #: The memory estimate the run was admitted with (bytes; not in JSON).
    estimate_bytes: int = 0
    #: What executed the model: ``numpy``, ``torch`` or ``torch-cuda`` (``--backend``).
    backend: str = "numpy"

    def to_json(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "iqr_s": self.iqr_s, "repeats": self.repeats,
                "loops": self.loops, "gflops": self.gflops, "stable": self.stable,
                "warnings": list(self.warnings), "backend": self.backend}


@dataclass(frozen=True, slots=True)
class MachineInfo:
    """What the benchmarks ran on."""

    #: ``"<internal_api> <version>"`` from threadpoolctl, e.g. ``"openblas 0.3.31.188.0"``.
    blas: str
    #: threadpoolctl's ``architecture`` (OpenBLAS kernel family, e.g. ``"Haswell"``), or
    #: ``"unknown"``.
    blas_arch: str
    #: BLAS threads in effect now.
    threads: int
    #: CPUs this process may run on (its affinity mask when the OS exposes one).
    cpu_count: int

    def to_json(self) -> dict[str, Any]:
        return {"blas": self.blas, "blas_arch": self.blas_arch, "threads": self.threads,
                "cpu_count": self.cpu_count}


@dataclass(frozen=True, slots=True)
class MachineRecord(MachineInfo):
    """A benchmark run's machine: what it ran on, and the GEMM peak its efficiencies use."""

    #: Matrix-multiply peak of ``dtype`` in GFLOP/s (0.0 when it could not be measured).
    gemm_peak_gflops: float
    dtype: str
    #: What executed the models (``--backend``); for the torch backends ``blas`` names the
    #: torch version, ``blas_arch`` the device and ``threads`` torch's intra-op threads.
    backend: str = "numpy"

    def to_json(self) -> dict[str, Any]:
        # MachineInfo named explicitly: zero-argument super() fails in slotted dataclasses.
        return {**MachineInfo.to_json(self), "gemm_peak_gflops": self.gemm_peak_gflops,
                "dtype": self.dtype, "backend": self.backend}
