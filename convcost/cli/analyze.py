"""The analysing commands: ``analyze`` (per-layer tables) and ``compare`` (side by side)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import click

from convcost.analysis import Analysis, Options
from convcost.cli.base import (
    CONVENTIONS,
    EXIT_BAD_INPUT,
    EXIT_OK,
    SPEC,
    WholeNumber,
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
from convcost.cost.report import SORT_KEYS

if TYPE_CHECKING:
    from convcost.bench.results import MachineRecord
    from convcost.cost.report import ModelReport
    from convcost.roofline.devices import Device

F = TypeVar("F", bound=Callable[..., Any])


class View(NamedTuple):
    """The table views of ``analyze``: rows to ``depth``, the ``top`` rows by ``sort``, or a
    ``summary`` line per model. JSON ignores them (it keeps every layer)."""

    depth: int | None
    top: int | None
    sort: str | None
    summary: bool

    def apply_all(self, models: Sequence[ModelReport]
                  ) -> tuple[list[ModelReport], list[list[str]]]:
        """The models as shown, and the notes that say how each was cut."""
        from convcost.render_views import aggregate, heaviest

        shown: list[ModelReport] = []
        notes: list[list[str]] = []
        for model in models:
            note: list[str] = []
            if self.depth is not None:
                rows = len(model.layers)
                model = aggregate(model, self.depth)
                note.append(f"--depth {self.depth}: {rows} layers in {len(model.layers)} "
                            f"rows (a block row sums its layers)")
            if self.top is not None or self.sort is not None:
                cut = heaviest(model, self.sort or "macs", self.top)
                model = cut.model
                note.append(cut.note)
            elif len(model.layers) > LARGE_TABLE:
                note.append(f"{len(model.layers):,} rows: --depth 1, --top N or --summary "
                            f"show less; --format json has everything")
            shown.append(model)
            notes.append(note)
        return shown, notes


#: Rows above which a table suggests the views.
LARGE_TABLE = 500


def view_options(function: F) -> F:
    """--depth, --top, --sort, --summary: what the table, Markdown and CSV show."""
    options = [
        click.option("--depth", type=WholeNumber(maximum=None), metavar="N",
                     help="Sum the layers nested below depth N into one row per block "
                          "(residual, branch group, gate, split), like torchinfo's depth; 1 "
                          "shows top-level positions only. Tables, Markdown and CSV."),
        click.option("--top", type=WholeNumber(maximum=None), metavar="N",
                     help="Show only the N heaviest rows (by --sort, default macs)."),
        click.option("--sort", type=click.Choice(SORT_KEYS, case_sensitive=False),
                     help="Sort rows, largest first: macs, params, memory (output bytes) or "
                          "time (measured with --bench, else the first --device's)."),
        click.option("--summary", is_flag=True,
                     help="One row per model (its totals) instead of one per layer."),
    ]
    for option in reversed(options):
        function = option(function)
    return function



@cli.command(epilog=CONVENTIONS)
@click.argument("specs", nargs=-1, required=True, type=SPEC, metavar="SPEC_OR_FILE...")
@analysis_options()
@device_option
@bench_options
@click.option("--jobs", "-j", type=WholeNumber(minimum=0), default=0, metavar="N",
              help="Processes for a large batch written as JSON: 0 (default) uses up to the "
                   "usable CPUs for batches of over 32K characters of specs, 1 this process "
                   "only. The output is the same either way.")
@view_options
@click.pass_context
def analyze(ctx: click.Context, specs: tuple[str, ...], size: tuple[int, int] | None,
            batch: int, dtype: str, fmt: str, devices: tuple[Device, ...], bench: bool,
            threads: int | None, max_memory: int | None, bench_budget: float | None,
            backend: str, jobs: int, depth: int | None, top: int | None, sort: str | None,
            summary: bool) -> None:
    """Per-layer costs of every model in SPEC_OR_FILE...

    Each argument is a chain ("56x56x64 -> 3x3(64)"), a spec file, a directory (searched for
    *.convcost), a glob pattern, or - for standard input.
    """
    check_device_dtype(devices, dtype)
    check_backend(bench, backend)
    view = View(depth, top, sort.lower() if sort else None, summary)
    if view.sort == "time" and not bench and not devices:
        raise click.BadParameter("--sort time needs times: add --bench, or --device for "
                                 "predicted ones", param_hint="--sort")
    fmt = fmt.lower()
    options = Options(size=size, batch=batch, dtype=dtype.lower())
    if fmt == "json" and not bench and not sys.stdout.isatty() and jobs != 1:
        # Compact JSON of a batch: the one output that parts of it may write in parallel.
        from convcost.batch import analyze_arguments_rendered, usable_cpus

        if jobs > usable_cpus():  # more processes than CPUs only adds forks (-j 100000: 10x)
            click.echo(f"convcost: note: --jobs {jobs} is more than the {usable_cpus()} usable "
                       f"CPUs; using {usable_cpus()}", err=True)
            jobs = usable_cpus()
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
    if fmt == "json":
        extra: dict[str, Any] = {"machine": machine.to_json()} if machine is not None else {}
        emit_document(analysis.reports, analysis.errors, **extra,
                      configuration=options.to_json())
    elif view.summary and analysis.reports:
        from convcost import render
        from convcost.render_views import heaviest_models
        models = analysis.reports
        if view.sort is not None or view.top is not None:
            models = heaviest_models(models, view.sort or "macs", view.top)
        if fmt == "csv":
            click.echo(render.summary_csv(models), nl=False)
        else:
            grid = render.summary_grid(models)
            if len(models) < len(analysis.reports):
                grid.notes.insert(0, f"{len(models)} of {len(analysis.reports)} models, by "
                                     f"{view.sort or 'macs'}")
            emit_grids([grid], fmt, machine)
    elif fmt == "csv":
        from convcost.render import analyze_csv
        click.echo(analyze_csv(view.apply_all(analysis.reports)[0]), nl=False)
    else:
        from convcost import render
        from convcost.render_views import display_names
        shown, notes = view.apply_all(analysis.reports)
        grids = []
        for name, model, note in zip(display_names(analysis.reports), shown, notes):
            grid = render.analyze_grid(model, name)
            grid.notes[:0] = note
            grids.append(grid)
        emit_grids(grids, fmt, machine)
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
    """Usage error (exit 2) before anything is analysed when --backend cannot run here; a
    note when it is given without --bench (nothing is timed, so it would do nothing)."""
    if backend.lower() == "numpy":
        return
    if not bench:
        click.echo(f"convcost: note: --backend {backend.lower()} only applies with --bench; "
                   f"nothing is timed", err=True)
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


