"""``convcost plot roofline|memory|layers``: the pictures people reason with, as files."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from convcost.cli.base import (
    EXIT_BAD_INPUT,
    EXIT_OK,
    SPEC,
    analysis_options,
    analyze_specs,
    check_device_dtype,
    cli,
    device_option,
    report_errors,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from convcost.analysis import Analyzed
    from convcost.roofline.devices import Device


@cli.group(short_help="Draw roofline, memory or per-layer plots to a file.")
def plot() -> None:
    """Draw a model's roofline, memory or per-layer costs to a PNG, SVG or PDF file.

    \b
    Examples:
      convcost plot roofline examples/resnet50.convcost --device t4 -o r50.png
      convcost plot memory examples/inception.convcost -o memory.svg
      convcost plot layers examples/mobilenet_v1.convcost --device l4 -o l.png

    Plots need matplotlib: pip install 'convcost[plot]'. With several models in the input,
    each gets its own file, named after the model (OUT-<model>.png).
    """


def _plot_options(function: Callable[..., Any]) -> Callable[..., Any]:
    function = click.option("-o", "--output", "output", required=True, metavar="FILE",
                            help="File to write: .png, .svg or .pdf.")(function)
    function = analysis_options(("table",), "Unused by plots.")(function)
    return click.argument("specs", nargs=-1, required=True, type=SPEC,
                          metavar="SPEC_OR_FILE...")(function)


def _draw(ctx: click.Context, specs: tuple[str, ...], size: tuple[int, int] | None,
          batch: int, dtype: str, output: str, devices: tuple[Device, ...],
          figure: Callable[[Analyzed], Figure]) -> None:
    """Analyse ``specs`` and write one figure per model; errors as everywhere else (exit 2)."""
    from convcost.errors import UsageError
    from convcost.plots import draw

    try:
        draw.file_format(output)
        draw._pyplot()  # before any analysis: a missing extra is the first thing to say
    except UsageError as error:
        raise click.UsageError(error.message) from None
    check_device_dtype(devices, dtype)
    analysis = analyze_specs(specs, size, batch, dtype)
    targets = _targets(output, [model.report.name for model in analysis.models])
    unwritten = 0
    for model, target in zip(analysis.models, targets):
        try:
            draw.save(figure(model), target)
        except OSError as error:
            # Like export: said as a located error (exit 2), and the other files still drawn.
            click.echo(f"{target}: error: cannot write: {error.strerror or error}", err=True)
            unwritten += 1
            continue
        click.echo(f"convcost: wrote {target}", err=True)
    report_errors(analysis)
    ctx.exit(EXIT_BAD_INPUT if analysis.errors or unwritten else EXIT_OK)


def _targets(output: str, names: list[str]) -> list[str]:
    """``output`` for one model; ``stem-<model>.ext`` for each of several (deduplicated)."""
    if len(names) <= 1:
        return [output]
    stem, suffix = os.path.splitext(output)
    seen: dict[str, int] = {}
    targets = []
    for name in names:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.")[:60] or "model"
        seen[safe] = seen.get(safe, 0) + 1
        if seen[safe] > 1:
            safe = f"{safe}-{seen[safe]}"
        targets.append(f"{stem}-{safe}{suffix}")
    return targets


@plot.command(short_help="A device's roofline with every layer a point.")
@_plot_options
@device_option
@click.pass_context
def roofline(ctx: click.Context, specs: tuple[str, ...], size: tuple[int, int] | None,
             batch: int, dtype: str, fmt: str, output: str, devices: tuple[Device, ...]
             ) -> None:
    """A device's roofline (log-log), every layer a point, the ridge and heaviest layers
    marked. Needs exactly one --device."""
    if len(devices) != 1:
        raise click.UsageError("plot roofline needs exactly one --device (list them with "
                               "'convcost devices')")
    from convcost.plots import data, draw

    _draw(ctx, specs, size, batch, dtype, output, devices,
          lambda model: draw.roofline_figure(data.roofline(model, devices[0])))


@plot.command(short_help="Live activation bytes over the execution steps.")
@_plot_options
@click.pass_context
def memory(ctx: click.Context, specs: tuple[str, ...], size: tuple[int, int] | None,
           batch: int, dtype: str, fmt: str, output: str) -> None:
    """Live activation bytes over the execution steps, the peak marked and its step named."""
    from convcost.plots import data, draw

    _draw(ctx, specs, size, batch, dtype, output, (),
          lambda model: draw.memory_figure(data.memory(model)))


@plot.command(short_help="Per-layer MACs and predicted time as bars.")
@_plot_options
@device_option
@click.pass_context
def layers(ctx: click.Context, specs: tuple[str, ...], size: tuple[int, int] | None,
           batch: int, dtype: str, fmt: str, output: str, devices: tuple[Device, ...]
           ) -> None:
    """Per-layer MACs as bars, and the predicted time on --device (at most one) below."""
    if len(devices) > 1:
        raise click.UsageError("plot layers takes at most one --device")
    from convcost.plots import data, draw

    device = devices[0] if devices else None
    _draw(ctx, specs, size, batch, dtype, output, devices,
          lambda model: draw.layers_figure(data.layers(model, device)))
