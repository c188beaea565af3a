"""Typed results of ``--bench``: what a model's report carries once it has been measured.

These are plain values (no NumPy), so reports, comparisons and renderers read them without
importing the benchmark machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: ``LayerBench.efficiency_flag`` values. Empty: an efficiency within the GEMM peak, its
#: probes agreeing.
BEATS_GEMM = "beats-gemm"
"""Probes agreed and the layer's own timing was stable, yet it ran above the matrix-multiply
peak: its kernel does fewer operations than the count (Winograd, FFT) or beats the GEMM."""
PROBE_UNRELIABLE = "probe-unreliable"
"""The GEMM probes around the layer's timed blocks disagreed: the machine's speed changed,
so no efficiency is reported."""
TIMING_UNSTABLE = "timing-unstable"
"""Probes agreed but the layer's own timing was unstable and read above the peak: no
efficiency is reported."""


def classify_efficiency(efficiency: float | None, probes_agree: bool,
                        layer_stable: bool) -> tuple[float | None, str]:
    """The efficiency to report and its flag: withheld (None) when the probes disagree, or
    when it reads above 1.0 on an unstable layer timing; above 1.0 otherwise is
    :data:`BEATS_GEMM`."""
    if efficiency is None:
        return None, ""
    if not probes_agree:
        return None, PROBE_UNRELIABLE
    if efficiency > 1.0:
        return (efficiency, BEATS_GEMM) if layer_stable else (None, TIMING_UNSTABLE)
    return efficiency, ""


@dataclass(frozen=True, slots=True)
class LayerBench:
    """One step's in-place time (seconds per batch) and what it achieved."""

    median_s: float
    iqr_s: float
    #: Achieved GFLOP/s (1e9 FLOP/s, 2·MACs per time); 0 for steps without MACs.
    gflops: float
    #: ``gflops`` / the matrix-multiply peak measured by GEMM probes around the layer's
    #: timed blocks; None without MACs or a usable peak, or when withheld (see
    #: ``efficiency_flag``).
    efficiency: float | None
    #: The kernel that ran (``gemm``, ``shifted-gemm``, ``im2col-gemm``, ``direct``, ...).
    algorithm: str
    #: False when the layer's timing was noisy (IQR above the policy's share of the median)
    #: or its efficiency was withheld.
    stable: bool = True
    #: "" or :data:`BEATS_GEMM`, :data:`PROBE_UNRELIABLE`, :data:`TIMING_UNSTABLE`.
    efficiency_flag: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "iqr_s": self.iqr_s, "gflops": self.gflops,
                "efficiency": self.efficiency, "algorithm": self.algorithm,
                "stable": self.stable, "efficiency_flag": self.efficiency_flag}


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
    #: Other processes held cores this run needed (see :mod:`convcost.bench.contention`).
    contended: bool = False
    #: Process CPU seconds / (wall seconds x threads) over the chain's timed blocks.
    cpu_share: float | None = None
    #: Cores other processes kept busy meanwhile (``/proc/stat``; None where absent).
    others_cores: float | None = None
    #: Whether the GEMM probes around most timed blocks agreed (machine speed steady).
    probes_agree: bool = True

    @property
    def reliable(self) -> bool:
        """Stable timing, steady probes and no contention: a time to compare with others."""
        return self.stable and self.probes_agree and not self.contended

    def to_json(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "iqr_s": self.iqr_s, "repeats": self.repeats,
                "loops": self.loops, "gflops": self.gflops, "stable": self.stable,
                "warnings": list(self.warnings), "backend": self.backend,
                "contended": self.contended, "cpu_share": self.cpu_share,
                "others_cores": self.others_cores, "probes_agree": self.probes_agree,
                "reliable": self.reliable}


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
