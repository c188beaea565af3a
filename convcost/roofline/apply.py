"""Roofline times attached to reports: what the CLI's ``--device`` and ``analyze(devices=...)``
both call, so a prediction is computed one way only.

Per layer, ``ops = 2 * MACs + other ops`` and ``bytes = traffic bytes`` (a report's values
already include its batch); the layer takes :func:`~convcost.roofline.predict.layer_time`
seconds on a device, and a model the sum of its layers (layers run one after another).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

from convcost.roofline.devices import LOCAL_ID, Device, DeviceError, resolve_device
from convcost.roofline.predict import Bound, model_time

if TYPE_CHECKING:
    from convcost.analysis import Analysis
    from convcost.cost.report import ModelReport

#: What a caller may name a device by: a shipped id, ``local``, a path, or a profile.
DeviceLike = Union[str, "os.PathLike[str]", Device]


@dataclass(frozen=True)
class RooflineTime:
    """One layer's predicted time on one device: ``device`` is the device id (what
    ``--device`` takes and what check metrics and table headers name), ``name`` its
    display name, ``bound`` whether compute or memory traffic sets the time."""

    device: str
    name: str
    time_s: float
    bound: Bound
    #: Predicted / measured - 1, when the step was measured (``--bench``) on this very device
    #: (``local``, the profile of the machine the benchmark ran on); else None.
    error: float | None = None

    def to_json(self) -> dict[str, Any]:
        # The display name is in the model's entry only: layers repeat it thousands of times.
        data: dict[str, Any] = {"device": self.device, "time_s": self.time_s,
                                "bound": self.bound}
        if self.error is not None:
            data["error"] = self.error
        return data


@dataclass(frozen=True)
class ModelRooflineTime(RooflineTime):
    """A whole model's predicted time (sum of its layers); ``bound`` is what bounds most of
    that time, ``attainable_flops`` total ops / time (None when the time is 0: no ops and
    no traffic), ``peak_flops`` the device's peak for the model's dtype."""

    attainable_flops: float | None = None
    peak_flops: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = {"device": self.device, "name": self.name, "time_s": self.time_s,
                "bound": self.bound, "attainable_flops": self.attainable_flops}
        if self.error is not None:
            data["error"] = self.error
        return data


def resolve_devices(specs: Iterable[DeviceLike]) -> tuple[Device, ...]:
    """Profiles for ``specs`` in order, repeats dropped. Two *different* profiles with one id
    (``a/box.toml`` and ``b/box.toml``) are refused: results are keyed by id."""
    devices: dict[str, Device] = {}
    for spec in specs:
        device = spec if isinstance(spec, Device) else resolve_device(os.fspath(spec))
        known = devices.get(device.id)
        if known is not None and known != device:
            raise DeviceError(f"two different devices have the id '{device.id}' "
                              f"({known.source or known.name}; {device.source or device.name}); "
                              f"rename one of the files")
        devices[device.id] = device
    return tuple(devices.values())


def check_dtype(devices: Sequence[Device], dtype: str) -> None:
    """DeviceError naming the device and its dtypes when one has no peak for ``dtype``."""
    for device in devices:
        device.peak_for(dtype)


def with_roofline(report: ModelReport, devices: Sequence[Device]) -> ModelReport:
    """``report`` with per-layer and per-model roofline times on every device, in order
    (replacing any earlier ones). DeviceError if a device has no peak for the report's dtype.

    On ``local`` (this machine's measured profile), a benchmarked report's layers and model
    also get the prediction's error against the measured time."""
    work = [(2 * layer.macs + layer.other_ops, layer.traffic_bytes) for layer in report.layers]
    per_layer: list[list[RooflineTime]] = [[] for _ in report.layers]
    totals: list[ModelRooflineTime] = []
    for device in devices:
        predicted = model_time(work, report.dtype, device)
        memory_s = sum(t.time_s for t in predicted.layers if t.bound == "memory")
        measured = device.id == LOCAL_ID
        for times, layer, time in zip(per_layer, report.layers, predicted.layers):
            error = _error(time.time_s, layer.bench.median_s if measured and layer.bench
                           else None)
            times.append(RooflineTime(device.id, device.name, time.time_s, time.bound, error))
        totals.append(ModelRooflineTime(
            device.id, device.name, predicted.total_s,
            "memory" if memory_s > predicted.total_s / 2 else "compute",
            _error(predicted.total_s, report.bench.median_s if measured and report.bench
                   else None),
            predicted.attainable_flops_per_s if predicted.total_s > 0 else None,
            device.peak_for(report.dtype)))
    layers = tuple(layer._replace(roofline=tuple(times))
                   for layer, times in zip(report.layers, per_layer))
    return report._replace(layers=layers, roofline=tuple(totals))


def _error(predicted_s: float, measured_s: float | None) -> float | None:
    """Predicted / measured - 1 (None without a positive measurement)."""
    if measured_s is None or measured_s <= 0:
        return None
    return predicted_s / measured_s - 1


def apply_to_analysis(analysis: Analysis, devices: Sequence[Device]) -> None:
    """Attach roofline times to every model of ``analysis`` in place (no-op without devices)."""
    if not devices:
        return
    from convcost.analysis import Analyzed

    analysis.models = [Analyzed(model.program, with_roofline(model.report, devices))
                       for model in analysis.models]

