"""The analysing commands: ``analyze`` (per-layer tables) and ``compare`` (side by side)."""

from __future__ import annotations

import gc
import sys
from typing import TYPE_CHECKING, Any

import click

from convcost.analysis import Analysis, Options
from convcost.cli.base import (
    CONVENTIONS,
    EXIT_BAD_INPUT,
    EXIT_OK,
    SPEC,
    analysis_options,
    analyze_specs,
    bench_options,
    check_device_dtype,
    cli,
    device_option,
    emit_document,
    emit_grids,
    report_errors,
    with_devices,
)

if TYPE_CHECKING:
    from convcost.bench.results import MachineRecord
    from convcost.roofline.devices import Device

@cli.command(epilog=CONVENTIONS)
@click.argument("specs", nargs=-1, required=True, type=SPEC, metavar="SPEC_OR_FILE...")
@analysis_options()
@device_option
@bench_options
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=0, metavar="N",
              help="Processes for a large batch written as JSON: 0 (default) uses up to the "
                   "usable CPUs for batches of over 32K characters of specs, 1 this process "
                   "only. The output is the same either way.")
@click.pass_context
def analyze(ctx: click.Context, specs: tuple[str, ...], size: tuple[int, int] | None,
            batch: int, dtype: str, fmt: str, devices: tuple[Device, ...], bench: bool,
            threads: int | None, max_memory: int | None, bench_budget: float | None,
            backend: str, jobs: int) -> None:
    """Per-layer costs of every model in SPEC_OR_FILE...

    Each argument is a chain ("56x56x64 -> 3x3(64)"), a spec file, a directory (searched for
    *.convcost), a glob pattern, or - for standard input.
    """
    check_device_dtype(devices, dtype)
    check_backend(bench, backend)
    if fmt.lower() == "json" and not bench and not sys.stdout.isatty() and jobs != 1:
        # Compact JSON of a batch: the one output that parts of it may write in parallel.
        from convcost.batch import analyze_arguments_rendered

        options = Options(size=size, batch=batch, dtype=dtype.lower())
        rendered = analyze_arguments_rendered(specs, options, jobs,
                                              lambda part: with_devices(part, devices))
        emit_document(rendered.reports, rendered.errors, rendered=rendered.rendered,
                      configuration=options.to_json())
        report_errors(rendered)
        ctx.exit(EXIT_BAD_INPUT if rendered.errors else EXIT_OK)
    analysis = analyze_specs(specs, size, batch, dtype)
    machine = _benchmark(analysis, bench, dtype, batch, threads, max_memory, bench_budget,
                         backend)
    with_devices(analysis, devices)
    fmt = fmt.lower()
    if fmt == "json":
        extra: dict[str, Any] = {"machine": machine.to_json()} if machine is not None else {}
        emit_document(analysis.reports, analysis.errors, **extra,
                      configuration=Options(size, batch, dtype.lower()).to_json())
    elif fmt == "csv":
        from convcost.render import analyze_csv
        click.echo(analyze_csv(analysis.reports), nl=False)
    else:
        from convcost import render
        emit_grids([render.analyze_grid(model) for model in analysis.reports], fmt, machine)
    report_errors(analysis)
    ctx.exit(EXIT_BAD_INPUT if analysis.errors else EXIT_OK)


@cli.command(epilog=CONVENTIONS)
@click.argument("specs", nargs=-1, required=True, type=SPEC, metavar="A B [C...]")
@click.option("--baseline", metavar="NAME",
              help="Model to compare against, by name, or as SOURCE:NAME when several "
                   "files define that name (default: the first one).")
@analysis_options()
@device_option
@bench_options
@click.pass_context
def compare(ctx: click.Context, specs: tuple[str, ...], baseline: str | None,
            size: tuple[int, int] | None, batch: int, dtype: str, fmt: str,
            devices: tuple[Device, ...], bench: bool, threads: int | None,
            max_memory: int | None, bench_budget: float | None, backend: str) -> None:
    """Compare models side by side against a baseline.

    Arguments are chains or spec files (a file's models are all compared), e.g.
    convcost compare "256 -> 4x4(256)" "256 -> 1x1(64) -> 4x4(256)" or
    convcost compare examples/bottleneck.convcost.
    """
    from convcost.compare import compare as compare_models
    from convcost.compare import find_baseline
    from convcost.errors import UsageError

    check_device_dtype(devices, dtype)
    check_backend(bench, backend)
    analysis = analyze_specs(specs, size, batch, dtype)
    if len(analysis.models) + len(analysis.errors) < 2:
        report_errors(analysis)
        raise click.UsageError("compare needs at least two models: give two chains, or a spec "
                               "file with several models")
    if analysis.models:
        try:  # before a benchmark that may take a while
            find_baseline(analysis.reports, baseline)
        except UsageError as error:
            report_errors(analysis)
            raise click.UsageError(error.message) from None
    machine = _benchmark(analysis, bench, dtype, batch, threads, max_memory, bench_budget,
                         backend)
    with_devices(analysis, devices)
    # Once, on the final reports (with their measurements when benchmarked).
    comparison = compare_models(analysis.reports, baseline) if analysis.models else None
    fmt = fmt.lower()
    if fmt == "json":
        extra: dict[str, Any] = {"comparison": comparison.to_json()} if comparison else {}
        if machine is not None:
            extra["machine"] = machine.to_json()
        emit_document(analysis.reports, analysis.errors, **extra,
                      configuration=Options(size, batch, dtype.lower()).to_json())
    elif comparison is not None:
        from convcost import render
        if fmt == "csv":
            click.echo(render.compare_csv(comparison), nl=False)
        else:
            emit_grids(render.compare_grids(comparison), fmt, machine)
    report_errors(analysis)
    ctx.exit(EXIT_BAD_INPUT if analysis.errors else EXIT_OK)


def check_backend(bench: bool, backend: str) -> None:
    """Usage error (exit 2) before anything is analysed when --backend cannot run here."""
    if not bench or backend.lower() == "numpy":
        return
    from convcost.bench.backends import check_backend as check
    from convcost.errors import UsageError

    try:
        check(backend.lower())
    except UsageError as error:
        raise click.UsageError(error.message) from None


def _benchmark(analysis: Analysis, enabled: bool, dtype: str, batch: int, threads: int | None,
               max_memory: int | None, budget: float | None,
               backend: str = "numpy") -> MachineRecord | None:
    """With --bench, measure every model (progress on standard error); the analysis then
    holds the measured reports, and refused models become its errors. Returns the machine
    record (None without --bench)."""
    if not enabled or not analysis.models:
        return None
    gc.enable()  # benchmarks allocate large arrays; the timing protocol manages the GC itself
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from convcost.bench import BenchSettings, bench_models
    from convcost.errors import UsageError

    try:
        settings = BenchSettings(dtype=dtype.lower(), batch=batch, threads=threads,
                                 max_memory=max_memory, budget_s=budget)
    except UsageError as error:
        raise click.BadParameter(error.message, param_hint=error.source) from None
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task("benchmarking", total=len(analysis.models))

        def show(number: int, count: int, name: str, what: str) -> None:
            label = f"[{number}/{count}] {name}: " if name else ""
            progress.update(task, completed=max(0, number - 1),
                            description=f"benchmarking {label}{what}")

        if backend.lower() == "numpy":
            result = bench_models(analysis.models, settings, show)
        else:
            from convcost.bench.backends.torch import bench_models as torch_bench_models

            result = torch_bench_models(analysis.models, settings, backend.lower(), show)
    for warning in result.warnings:
        click.echo(f"convcost: note: {warning}", err=True)
    analysis.models = list(result.models)
    analysis.errors.extend(result.errors)
    return result.machine


