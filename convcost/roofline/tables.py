"""Roofline predictions as grids (see :mod:`convcost.render`): time columns for ``analyze``,
a speedup table for ``compare``, the device list, and the CSV columns.

Kept apart from :mod:`convcost.render` so the predictions stay one addition to its tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convcost import units
from convcost.compare import Comparison, bench_seconds
from convcost.cost.report import ModelReport
from convcost.render import Column, Grid
from convcost.roofline.apply import RooflineTime
from convcost.roofline.devices import Device

#: How a prediction is made, for the notes under the tables.
METHOD = ("roofline time: per layer max(ops / peak, bytes / bandwidth), summed over layers; "
          "a lower bound (perfect overlap, peak efficiency)")


def header(device: str) -> str:
    """The column header of a device's times: 't@t4'."""
    return f"t@{device}"


def extend_analyze_grid(grid: Grid, model: ModelReport) -> None:
    """Append one time column per device to an :func:`~convcost.render.analyze_grid` grid,
    the model's totals to its footer, and one note per device."""
    if not model.roofline:
        return
    # With --bench on 'local', the prediction's error against the measured time follows its
    # time column.
    checked = [time.error is not None for time in model.roofline]
    for time, errors in zip(model.roofline, checked):
        grid.columns.append(Column(header(time.device), "roofline", priority=2))
        if errors:
            grid.columns.append(Column(f"err@{time.device}", "change", priority=3))

    def cells(times: Sequence[RooflineTime]) -> list[Any]:
        row: list[Any] = []
        for time, errors in zip(times, checked):
            row.append((time.time_s, time.bound))
            if errors:
                row.append(time.error)
        return row

    for row, layer in zip(grid.rows, model.layers):
        row += cells(layer.roofline)
    if grid.footer is not None:
        grid.footer += cells(model.roofline)
    # Under --depth a row may be a block (memory-bound when most of its time is); under --top
    # the rows are the heaviest few ('4 of 4 layers' read as if it were the whole model).
    rows = "rows" if any(layer.kind == "block" for layer in model.layers) else "layers"
    for position, total in enumerate(model.roofline):
        memory = sum(1 for layer in model.layers if layer.roofline[position].bound == "memory")
        attainable = ("" if total.attainable_flops is None else
                      f", {_flops(total.attainable_flops)} attainable "
                      f"({total.attainable_flops / total.peak_flops:.0%} of the {model.dtype} "
                      f"peak)")
        against = ("" if total.error is None else
                   f", {total.error:+.0%} against the measured "
                   f"{units.seconds(model.bench.median_s if model.bench else 0.0)}")
        grid.notes.append(f"{header(total.device)} = {total.name}: predicted "
                          f"{units.seconds(total.time_s)}{attainable}{against}; {memory} of the "
                          f"{len(model.layers)} {rows} shown memory-bound (*)")
    grid.notes.append(METHOD)


def compare_grid(comparison: Comparison) -> Grid | None:
    """Predicted time and speedup (baseline time / model time) per device, next to the MAC
    speedup and, when benchmarked, the measured one. None without predictions."""
    base = comparison.baseline
    if not base.roofline:
        return None
    devices = [time.device for time in base.roofline]
    benched = any(bench_seconds(model) is not None for model in comparison.models)
    grid = Grid(title=f"predicted time per device, speedup over {base.name}",
                columns=[Column("model", priority=0, wraps=True),
                         Column("MAC speedup", "ratio", priority=2),
                         *(Column(header(device), "speedup") for device in devices)])
    if benched:
        grid.columns.append(Column("measured", "speedup"))
    for model in comparison.models:
        is_base = model is base
        mac = "baseline" if is_base else units.times(comparison.predicted_speedup(model))
        speedups = comparison.roofline_speedup(model)
        row: list[Any] = [model.name, mac]
        row += [(time.time_s, "base" if is_base else speedups.get(time.device))
                for time in model.roofline]
        if benched:
            row.append((bench_seconds(model),
                        "base" if is_base else comparison.measured_speedup(model)))
        grid.rows.append(row)
    for model in comparison.models:
        if model is base:
            continue
        speedups = comparison.roofline_speedup(model)
        per_device = ", ".join(f"{units.times(ratio)} on {device}" for device, ratio in
                               speedups.items())
        measured = (f"; measured {units.times(comparison.measured_speedup(model))}"
                    if benched else "")
        grid.notes.append(f"{model.name} vs {base.name}: {units.times(comparison.predicted_speedup(model))}"
                          f" by MACs; predicted {per_device}{measured}")
    names = "; ".join(f"{header(time.device)} = {time.name}" for time in base.roofline)
    grid.notes += [names, METHOD]
    return grid


def devices_grid(devices: Sequence[Device], *, verbose: bool = False) -> Grid:
    """The device list: float32 and float16 peaks in TFLOP/s, bandwidth in GB/s."""
    grid = Grid(title="devices (use with --device ID, or --device FILE.toml)",
                columns=[Column("id", priority=0), Column("name", priority=3, wraps=True),
                         Column("kind", priority=4), Column("fp32 TFLOP/s", "float", priority=0),
                         Column("fp16 TFLOP/s", "float"), Column("GB/s", "float", priority=0)])
    for device in devices:
        fp32, fp16 = (device.peak.get(dtype) for dtype in ("float32", "float16"))
        grid.rows.append([device.id, device.name, device.kind,
                          None if fp32 is None else fp32 / 1e12,
                          None if fp16 is None else fp16 / 1e12, device.bandwidth / 1e9])
    grid.notes.append("peaks are dense vendor datasheet figures (CPUs: cores x base clock x "
                      "FLOP/cycle); - = no published peak for that dtype")
    if verbose:
        for device in devices:
            others = ", ".join(f"{dtype} {value / 1e12:g}" for dtype, value in
                               device.peak.items() if dtype not in ("float32", "float16"))
            grid.notes.append(f"{device.id}: {device.source}"
                              + (f" [other peaks, T(FL)OP/s: {others}]" if others else ""))
    else:
        grid.notes.append("sources and the other dtypes: convcost devices --verbose "
                          "(or --format json)")
    return grid


def layer_csv(models: Sequence[ModelReport]) -> tuple[list[str], list[list[Any]]]:
    """Extra CSV columns for analyze: seconds and bound per device, one row per layer."""
    devices = _devices(models)
    header_ = [f"{name}@{device}" for device in devices for name in ("time_s", "bound")]
    rows = [[value for time in layer.roofline for value in (time.time_s, time.bound)]
            for model in models for layer in model.layers]
    return header_, rows


def model_csv(comparison: Comparison) -> tuple[list[str], list[list[Any]]]:
    """Extra CSV columns for compare: seconds and speedup per device, one row per model."""
    devices = _devices(comparison.models)
    header_ = [f"{name}@{device}" for device in devices
               for name in ("time_s", "roofline_speedup")]
    rows = []
    for model in comparison.models:
        speedups = comparison.roofline_speedup(model)
        rows.append([value for time in model.roofline for value in
                     (time.time_s, _rounded(speedups.get(time.device)))])
    return header_, rows


def _devices(models: Sequence[ModelReport]) -> list[str]:
    return [time.device for time in models[0].roofline] if models else []


def _rounded(ratio: float | None) -> float | None:
    return None if ratio is None else round(ratio, 6)


def _flops(value: float) -> str:
    for suffix, scale in (("PFLOP/s", 1e15), ("TFLOP/s", 1e12), ("GFLOP/s", 1e9)):
        if value >= scale:
            return f"{value / scale:.3g} {suffix}"
    return f"{value / 1e6:.3g} MFLOP/s"
