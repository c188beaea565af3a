"""The data behind each plot, as typed values computed from an analysed model.

Everything here is plain Python (no matplotlib), so tests check the numbers a plot shows
without drawing it. Units: bytes, seconds, FLOP (or int8 OP) and FLOP/s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from convcost.cost.memory import live_profile
from convcost.cost.report import DTYPE_BYTES

if TYPE_CHECKING:
    from convcost.analysis import Analyzed
    from convcost.roofline.devices import Device

#: How many of the heaviest layers (by predicted time, or by MACs) a plot names.
LABELLED = 5


def title(model: str, dtype: str, batch: int, device: Device | None = None) -> str:
    """A plot's title: the model, the device (when there is one), the dtype and the batch."""
    on = f" on {device.name}" if device is not None else ""
    return f"{model}{on} ({dtype}, batch {batch})"


def _label(path: str, text: str) -> str:
    return f"{path} {text}"


class RooflinePoint(NamedTuple):
    """One layer on the roofline: ``ops`` (2·MACs + other ops) over ``bytes`` of traffic."""

    label: str
    ops: int
    bytes: int
    time_s: float
    bound: str

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, ops per byte of traffic."""
        return self.ops / self.bytes

    @property
    def attained(self) -> float:
        """Predicted performance, ops per second: on the roof by construction."""
        return self.ops / self.time_s


class RooflinePlot(NamedTuple):
    """A device's roofline and the model's layers on it.

    ``points`` are the layers with both work and traffic (others cannot sit on log axes and
    are counted in ``skipped``); ``labelled`` indexes the heaviest of them by time."""

    title: str
    peak: float
    bandwidth: float
    points: tuple[RooflinePoint, ...]
    labelled: tuple[int, ...]
    skipped: int

    @property
    def ridge(self) -> float:
        """Intensity (ops per byte) where the memory roof meets the compute roof."""
        return self.peak / self.bandwidth


def roofline(model: Analyzed, device: Device) -> RooflinePlot:
    """The roofline of ``device`` for ``model``'s dtype, every costed layer a point."""
    from convcost.roofline.predict import layer_time

    report = model.report
    points: list[RooflinePoint] = []
    skipped = 0
    for layer in report.layers:
        ops, traffic = 2 * layer.macs + layer.other_ops, layer.traffic_bytes
        if ops == 0 or traffic == 0:
            skipped += 1
            continue
        time = layer_time(ops, traffic, report.dtype, device)
        points.append(RooflinePoint(_label(layer.path, layer.text), ops, traffic,
                                    time.time_s, time.bound))
    heaviest = sorted(range(len(points)), key=lambda i: -points[i].time_s)[:LABELLED]
    return RooflinePlot(title(report.name, report.dtype, report.batch, device),
                        device.peak_for(report.dtype), device.bandwidth, tuple(points),
                        tuple(sorted(heaviest)), skipped)


class MemoryPlot(NamedTuple):
    """Live activation bytes right after each step (1-based step numbers), with the peak.

    ``peak_step`` is 0 when the bare input is the peak; ``peak_label`` names that step."""

    title: str
    input_bytes: int
    live_bytes: tuple[int, ...]
    peak_bytes: int
    peak_step: int
    peak_label: str


def memory(model: Analyzed) -> MemoryPlot:
    """Live activation memory over ``model``'s steps, in execution order (the memory model
    of :mod:`convcost.cost.memory`, so the peak is the report's peak)."""
    report, program = model.report, model.program
    scale = report.batch * DTYPE_BYTES[report.dtype]
    profile = live_profile(program)
    position = profile.peak_step
    if position is None:
        step, label = 0, "the input"
    else:
        step, label = position + 1, _label(program.steps[position].path,
                                           program.steps[position].text)
    return MemoryPlot(title(report.name, report.dtype, report.batch),
                      profile.input_elements * scale,
                      tuple(live * scale for live in profile.live), profile.peak * scale,
                      step, label)


class LayersPlot(NamedTuple):
    """Per-layer MACs and, with a device, predicted seconds, in execution order."""

    title: str
    labels: tuple[str, ...]
    macs: tuple[int, ...]
    times_s: tuple[float, ...] | None


def layers(model: Analyzed, device: Device | None = None) -> LayersPlot:
    """Bars of every layer's MACs, and its roofline time on ``device`` when given."""
    from convcost.roofline.predict import layer_time

    report = model.report
    labels = tuple(_label(layer.path, layer.text) for layer in report.layers)
    macs = tuple(layer.macs for layer in report.layers)
    times = None if device is None else tuple(
        layer_time(2 * layer.macs + layer.other_ops, layer.traffic_bytes, report.dtype,
                   device).time_s for layer in report.layers)
    return LayersPlot(title(report.name, report.dtype, report.batch, device), labels, macs,
                      times)
