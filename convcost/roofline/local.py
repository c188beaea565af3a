"""This machine's device profile from a ``convcost calibrate`` measurement.

:func:`profile_from_calibration` is pure: the measurement comes in (anything shaped like
:class:`convcost.bench.machine`'s ``Calibration``), a :class:`Device` goes out;
:func:`save_profile` writes it where ``--device local`` reads it.
"""

from __future__ import annotations

import datetime
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from convcost.roofline.devices import (
    DTYPES,
    LOCAL_ID,
    Device,
    DeviceError,
    device_to_toml,
    local_profile_path,
)


class MachineLike(Protocol):
    """The parts of a calibration's machine record a profile is named after."""

    @property
    def blas(self) -> str: ...

    @property
    def blas_arch(self) -> str: ...

    @property
    def threads(self) -> int: ...


class CalibrationLike(Protocol):
    """The parts of a calibration a profile is made of (GFLOP/s and GB/s, as measured)."""

    @property
    def machine(self) -> MachineLike: ...

    @property
    def gemm_peak_gflops(self) -> Mapping[str, float]: ...

    @property
    def memory_bandwidth_gbs(self) -> float: ...


def profile_from_calibration(calibration: CalibrationLike,
                             today: datetime.date | None = None) -> Device:
    """A ``local`` device: measured matrix-multiply peak per dtype as FLOP/s (GFLOP/s * 1e9)
    and copy bandwidth as bytes/s (GB/s * 1e9).

    Dtypes the roofline does not know, and peaks that are not positive finite numbers (a
    failed measurement), are left out; DeviceError when no peak is left or the bandwidth is
    not usable.
    """
    info = calibration.machine
    peak = {dtype: gflops * 1e9 for dtype, gflops in calibration.gemm_peak_gflops.items()
            if dtype in DTYPES and math.isfinite(gflops) and gflops > 0}
    if not peak:
        measured = ", ".join(calibration.gemm_peak_gflops) or "none"
        raise DeviceError(f"no usable matrix-multiply peak was measured (dtypes: {measured})")
    date = (today or datetime.date.today()).isoformat()
    threads = info.threads
    return Device(
        id=LOCAL_ID,
        name=f"this machine ({info.blas} {info.blas_arch}, {threads} "
             f"thread{'s' if threads != 1 else ''})",
        kind="cpu",
        peak=peak,
        bandwidth=calibration.memory_bandwidth_gbs * 1e9,
        memory_bytes=None,
        source=f"convcost calibrate on {date}",
    )


def save_profile(device: Device, path: str | os.PathLike[str] | None = None) -> Path:
    """Write ``device`` as a device file (default: :func:`local_profile_path`), creating
    parent directories; returns the path. DeviceError when it cannot be written."""
    target = Path(path).expanduser() if path is not None else local_profile_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: a failed write never leaves half a profile.
        partial = target.with_name(target.name + ".partial")
        partial.write_text(device_to_toml(device), encoding="utf-8")
        partial.replace(target)
    except OSError as error:
        raise DeviceError(f"cannot write {target}: {error.strerror or error}") from None
    return target
