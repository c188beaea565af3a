"""convcost: exact MACs, FLOPs, parameters and memory of convolutional networks.

The library API::

    >>> import convcost
    >>> result = convcost.analyze("256 -> 1x1(64) -> 4x4(256)", "256 -> 4x4(256)")
    >>> [report.totals.macs for report in result.reports]
    [278528, 1048576]

``analyze`` takes chains, spec-file paths, directories and glob patterns (strings or
``os.PathLike``), with ``size`` (H, W), ``batch`` and ``dtype``, and returns an
:class:`Analysis`: typed :class:`ModelReport` values (``.reports``), each paired with the
:class:`Program` it was costed from (``.models``), and located :class:`ConvcostError` values
for everything that could not be analysed (``.errors``). Nothing is printed.

With ``devices`` (shipped ids such as ``"t4"``, ``"local"``, paths to device files, or
:class:`convcost.roofline.Device` values), every layer and model also carries its roofline
time on each device (``report.roofline``, ``layer.roofline``)::

    >>> report = convcost.analyze("56x56x64 -> 3x3(64)", devices=["t4"]).reports[0]
    >>> report.roofline[0].device, report.roofline[0].bound
    ('t4', 'compute')
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Union

try:
    from convcost.analysis import Analysis, Analyzed, Options, analyze_arguments
    from convcost.cost.report import LayerReport, ModelReport, Totals
    from convcost.errors import (
        BaselineError,
        BenchError,
        BenchRefused,
        ConvcostError,
        InputError,
        ReadError,
        SpecError,
        UnsupportedDtype,
        UsageError,
    )
    from convcost.model.program import Program, Shape, Step
except KeyboardInterrupt:  # Ctrl-C while the command starts: exit 130, no traceback
    from convcost.errors import interrupted_while_starting

    interrupted_while_starting()

if TYPE_CHECKING:
    from convcost.roofline.apply import DeviceLike

__version__ = "0.2.0"

__all__ = [
    "Analysis", "Analyzed", "BaselineError", "BenchError", "BenchRefused", "ConvcostError",
    "InputError", "LayerReport", "ModelReport", "Options", "Program", "ReadError", "Shape",
    "SpecError", "Step", "Totals", "UnsupportedDtype", "UsageError", "__version__", "analyze",
]

SpecLike = Union[str, "os.PathLike[str]"]


def analyze(*specs: SpecLike, size: tuple[int, int] | int | None = None, batch: int = 1,
            dtype: str = "float32", devices: Iterable[DeviceLike] = ()) -> Analysis:
    """Analyse chains, spec files, directories or glob patterns, in order.

    ``size`` replaces every input's spatial size (``(224, 224)`` or ``224``); ``batch``
    multiplies MACs, other ops and activation memory; ``dtype`` is one of float32, float16,
    bfloat16, int8, float64. Bad inputs become ``.errors``; the others are still analysed.
    Raises :class:`ValueError` for an impossible option (batch < 1, unknown dtype), and
    :class:`convcost.roofline.DeviceError` (a ValueError too) for a device that cannot be
    found or read, or that has no peak for ``dtype`` -- before anything is analysed.
    """
    from convcost.cost.report import DTYPE_BYTES
    from convcost.roofline.apply import apply_to_analysis, check_dtype, resolve_devices

    if isinstance(size, int):
        size = (size, size)
    if size is not None and (len(size) != 2 or min(size) < 1):
        raise ValueError(f"size must be (H, W) with H, W >= 1, not {size!r}")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, not {batch}")
    if dtype.lower() not in DTYPE_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}")
    profiles = resolve_devices(devices)
    check_dtype(profiles, dtype.lower())
    analysis = analyze_arguments([os.fspath(spec) for spec in specs],
                                 Options(size=size, batch=batch, dtype=dtype.lower()))
    apply_to_analysis(analysis, profiles)
    return analysis
