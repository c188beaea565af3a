"""Roofline time predictions: each layer takes the longer of its compute and its memory time.

A layer doing ``ops`` operations and moving ``bytes`` bytes on a device with peak ``P`` FLOP/s
(for the dtype) and bandwidth ``B`` bytes/s takes ``max(ops / P, bytes / B)`` seconds. This is
a lower bound: it assumes perfect overlap of compute and memory traffic and peak efficiency.

Callers pass exact integers with the batch already applied: ``ops = 2 * MACs + other ops`` and
``bytes`` = the layer's memory traffic. Results are floats (seconds, FLOP/s, FLOP/byte).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from convcost.roofline.devices import Device

Bound = Literal["compute", "memory"]


@dataclass(frozen=True)
class LayerTime:
    """Predicted time of one layer (seconds) and what bounds it; ``ops`` (FLOP or int8 OP) and
    ``bytes`` are the inputs it was computed from."""

    time_s: float
    bound: Bound
    ops: int
    bytes: int


class ModelTime(NamedTuple):
    """A whole model's prediction; unpacks as ``total_s, layers, attainable_flops_per_s``."""

    #: Sum of the layer times, seconds.
    total_s: float
    layers: tuple[LayerTime, ...]
    #: Total ops / total time, FLOP/s (0.0 when the total time is 0).
    attainable_flops_per_s: float


def _check_count(name: str, value: int) -> None:
    # bool is an int subclass; a float would silently lose exactness upstream.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def layer_time(ops: int, bytes_: int, dtype: str, device: Device) -> LayerTime:
    """Roofline time of one layer: ``max(ops / peak[dtype], bytes_ / bandwidth)`` seconds.

    Tie rule: the layer is "compute"-bound when the compute time is >= the memory time, so a
    layer exactly at the ridge point (and an empty layer, 0 ops and 0 bytes) counts as
    compute-bound. Raises DeviceError if the device has no peak for ``dtype``.
    """
    _check_count("ops", ops)
    _check_count("bytes_", bytes_)
    peak = device.peak_for(dtype)
    compute_s = ops / peak
    memory_s = bytes_ / device.bandwidth
    if compute_s >= memory_s:
        return LayerTime(compute_s, "compute", ops, bytes_)
    return LayerTime(memory_s, "memory", ops, bytes_)


def model_time(layers: Iterable[tuple[int, int]], dtype: str, device: Device) -> ModelTime:
    """Roofline times of ``(ops, bytes)`` layers run one after another, and their sum.

    The dtype is checked even for an empty model, so a bad dtype never passes silently.
    """
    device.peak_for(dtype)
    times = tuple(layer_time(ops, bytes_, dtype, device) for ops, bytes_ in layers)
    # fsum: many tiny layer times next to big ones would otherwise lose precision.
    total_s = math.fsum(t.time_s for t in times)
    total_ops = sum(t.ops for t in times)
    attainable = total_ops / total_s if total_s > 0 else 0.0
    return ModelTime(total_s, times, attainable)


def ridge_point(device: Device, dtype: str) -> float:
    """Arithmetic intensity (FLOP per byte) above which a layer is compute-bound on ``device``."""
    return device.peak_for(dtype) / device.bandwidth
