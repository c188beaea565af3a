"""Drawing the plots of :mod:`convcost.plots.data` with matplotlib (the ``plot`` extra).

matplotlib is imported here only, with the non-interactive Agg backend: plots are files, and
a machine without a display must draw them too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from convcost.errors import UsageError
from convcost.plots.data import LABELLED, LayersPlot, MemoryPlot, RooflinePlot
from convcost.units import count as count_text
from convcost.units import nbytes as bytes_text
from convcost.units import seconds as seconds_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: File formats by suffix; the suffix of ``-o`` picks one.
FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
INSTALL_HINT = "pip install 'convcost[plot]'"
#: Beyond this many layers, the layers plot draws its bars as one filled step outline.
MAX_BARS = 2_000


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend, or a usage error naming the extra to install."""
    try:
        import matplotlib
    except ImportError:
        raise UsageError(f"plots need matplotlib, which is not installed: {INSTALL_HINT}",
                         "plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def file_format(path: str) -> str:
    """The format ``path``'s suffix asks for, or a usage error listing the supported ones."""
    for suffix, name in FORMATS.items():
        if path.lower().endswith(suffix):
            return name
    raise UsageError(f"cannot tell the plot format of '{path}': end the file name with "
                     f"{', '.join(FORMATS)}", "-o")


def save(figure: Figure, path: str) -> None:
    """Write ``figure`` to ``path`` in the format of its suffix, then free it."""
    import matplotlib.pyplot as plt

    try:
        figure.savefig(path, format=file_format(path), dpi=120, bbox_inches="tight",
                       metadata={"Software": "convcost"} if path.endswith(".png") else None)
    finally:
        plt.close(figure)


def roofline_figure(plot: RooflinePlot) -> Figure:
    """Log-log roofline: the memory and compute roofs, the ridge marked, a point per layer
    (memory-bound and compute-bound in two colours), the heaviest layers named."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 5.5))
    intensities = [point.intensity for point in plot.points]
    low = min([*intensities, plot.ridge]) / 4
    high = max([*intensities, plot.ridge]) * 4
    axes.plot([low, plot.ridge, high], [low * plot.bandwidth, plot.peak, plot.peak],
              color="black", linewidth=1.5, label="roofline")
    axes.axvline(plot.ridge, color="grey", linestyle=":", linewidth=1)
    axes.annotate(f"ridge {plot.ridge:.3g} FLOP/B", (plot.ridge, plot.peak),
                  textcoords="offset points", xytext=(6, -14), fontsize=8, color="grey")
    for bound, colour in (("memory", "tab:blue"), ("compute", "tab:red")):
        chosen = [point for point in plot.points if point.bound == bound]
        if chosen:
            axes.scatter([p.intensity for p in chosen], [p.attained for p in chosen], s=18,
                         color=colour, alpha=0.7, label=f"{bound}-bound layers ({len(chosen)})",
                         zorder=3)
    # The heaviest layers crowd together under the roof: number them on the plot and name
    # them in a key, rather than overlapping their labels.
    heaviest = sorted(plot.labelled, key=lambda i: -plot.points[i].time_s)
    for number, index in enumerate(heaviest, start=1):
        point = plot.points[index]
        axes.annotate(str(number), (point.intensity, point.attained), textcoords="offset points",
                      xytext=(-3 + 7 * (number % 2), 5 + 6 * (number % 3)), fontsize=8,
                      fontweight="bold")
    if heaviest:
        key = "\n".join(f"{number}  {plot.points[index].label} "
                        f"({seconds_text(plot.points[index].time_s)})"
                        for number, index in enumerate(heaviest, start=1))
        axes.text(0.02, 0.98, f"slowest layers:\n{key}", transform=axes.transAxes, fontsize=7,
                  va="top", family="monospace",
                  bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85})
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("arithmetic intensity (FLOP per byte of traffic)")
    axes.set_ylabel("attainable FLOP/s")
    note = f"; {plot.skipped} layers without work or traffic not shown" if plot.skipped else ""
    axes.set_title(f"{plot.title}\npeak {count_text(round(plot.peak))} FLOP/s, "
                   f"{bytes_text(round(plot.bandwidth))}/s{note}", fontsize=10)
    axes.grid(True, which="both", alpha=0.25)
    axes.legend(fontsize=8, loc="lower right")
    return figure  # type: ignore[no-any-return]  # pyplot is untyped here


def memory_figure(plot: MemoryPlot) -> Figure:
    """Live activation bytes after each step, the peak marked and its step named."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 4.5))
    steps = list(range(len(plot.live_bytes) + 1))
    axes.step(steps, [plot.input_bytes, *plot.live_bytes], where="post", color="tab:blue")
    axes.fill_between(steps, [plot.input_bytes, *plot.live_bytes], step="post", alpha=0.2)
    axes.scatter([plot.peak_step], [plot.peak_bytes], color="tab:red", zorder=3)
    axes.annotate(f"peak {bytes_text(plot.peak_bytes)} at step {plot.peak_step}: "
                  f"{plot.peak_label}", (plot.peak_step, plot.peak_bytes),
                  textcoords="offset points", xytext=(6, 4), fontsize=8)
    axes.set_xlabel("step (execution order; 0 = the input)")
    from matplotlib.ticker import FuncFormatter

    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: bytes_text(round(value))))
    axes.set_ylabel("live activation memory")
    axes.set_ylim(0, plot.peak_bytes * 1.15 or 1)
    axes.set_title(f"{plot.title}\nlive activation memory", fontsize=10)
    axes.grid(True, alpha=0.25)
    return figure  # type: ignore[no-any-return]  # pyplot is untyped here


def _axis_unit(unit: Callable[[float], str]) -> Callable[[float, Any], str]:
    """A tick formatter writing ``unit(value)``, and a plain 0 at the origin."""
    return lambda value, _: unit(value) if value else "0"


def layers_figure(plot: LayersPlot) -> Figure:
    """Bars of MACs per layer and, with a device, of predicted time, the heaviest named."""
    plt = _pyplot()
    panels = 2 if plot.times_s is not None else 1
    figure, axes = plt.subplots(panels, 1, figsize=(10, 3.2 * panels + 0.8), sharex=True,
                                squeeze=False)
    positions = list(range(1, len(plot.labels) + 1))
    series: list[tuple[str, list[float], str, Callable[[float], str]]] = [
        ("MACs", [float(value) for value in plot.macs], "tab:blue",
         lambda value: count_text(round(value)))]
    if plot.times_s is not None:
        series.append(("predicted time", list(plot.times_s), "tab:orange", seconds_text))
    from matplotlib.ticker import FuncFormatter

    for (name, values, colour, unit), row in zip(series, axes):
        panel = row[0]
        if len(values) <= MAX_BARS:
            panel.bar(positions, values, width=0.9, color=colour)
        else:  # one filled outline, not a patch per layer (100,000 bars took minutes and GBs)
            panel.stairs(values, [position - 0.5 for position in [*positions,
                                                                  len(positions) + 1]],
                         fill=True, color=colour)
        panel.set_ylabel(name)
        panel.yaxis.set_major_formatter(FuncFormatter(_axis_unit(unit)))
        panel.set_ylim(0, max(values, default=0) * 1.35 or 1)
        panel.grid(True, axis="y", alpha=0.25)
        # Each panel names its own heaviest layers, staggered so neighbours do not collide.
        heaviest = sorted(range(len(values)), key=lambda i: -values[i])[:LABELLED]
        for number, index in enumerate(sorted(heaviest)):
            panel.annotate(plot.labels[index], (index + 1, values[index]),
                           textcoords="offset points", xytext=(0, 3 + 9 * (number % 3)),
                           fontsize=7, ha="center")
    axes[-1][0].set_xlabel("layer (execution order)")
    axes[0][0].set_title(plot.title, fontsize=10)
    return figure  # type: ignore[no-any-return]  # pyplot is untyped here
