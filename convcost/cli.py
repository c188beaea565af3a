"""The ``convcost`` command line: parse options, call the library, render, map errors to exit
codes. Data goes to standard output; diagnostics go to standard error.

Exit codes: 0 success; 1 a check failed; 2 bad input or usage; 130 interrupted.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from convcost import __version__
from convcost.analysis import Analysis, Options, analyze_arguments
from convcost.cost.handlers import CONVENTIONS as COUNTING_CONVENTIONS
from convcost.cost.report import DTYPE_BYTES
from convcost.errors import ConvcostError

if TYPE_CHECKING:
    from convcost.bench.results import MachineRecord
    from convcost.roofline.devices import Device

F = TypeVar("F", bound=Callable[..., Any])
EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
FORMATS = ("table", "json", "markdown", "csv")
CHECK_FORMATS = ("table", "json", "markdown", "github")

CONVENTIONS = "\b\n" + COUNTING_CONVENTIONS


def _parse_size(ctx: click.Context, param: click.Parameter, value: str | None
                ) -> tuple[int, int] | None:
    if value is None:
        return None
    parts = value.lower().replace("×", "x").split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise click.BadParameter(f"'{value}' is not a size like 224x224 (or 224)")
    return int(parts[0]), int(parts[1])


def _quantity(byte_units: bool) -> Callable[[click.Context, click.Parameter, str | None],
                                          int | None]:
    """A click callback parsing '4.2G' (counts) or '120MB' (bytes) into an exact integer."""
    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
        if value is None:
            return None
        from convcost.units import parse_quantity
        try:
            return parse_quantity(value, byte_units=byte_units)
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
    return parse


def analysis_options(formats: tuple[str, ...] = FORMATS,
                     format_help: str = "Output format: rich table, JSON (schema convcost/1), "
                                        "Markdown, CSV.") -> Callable[[F], F]:
    """The options every analysing command shares: --size, --batch, --dtype, --format."""
    options = [
        click.option("--size", callback=_parse_size, metavar="HxW",
                     help="Replace the spatial size of every input (e.g. 224x224)."),
        click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Batch size: multiplies MACs, other ops and activation memory."),
        click.option("--dtype", type=click.Choice(sorted(DTYPE_BYTES), case_sensitive=False),
                     default="float32", show_default=True,
                     help="Element type for memory figures."),
        click.option("--format", "fmt", type=click.Choice(formats, case_sensitive=False),
                     default="table", show_default=True, help=format_help),
    ]

    def decorate(function: F) -> F:
        for option in reversed(options):
            function = option(function)
        return function
    return decorate


def bench_options(function: F) -> F:
    """The options of --bench runs: measuring every model for real with NumPy."""
    options = [
        click.option("--bench", is_flag=True,
                     help="Also run every model with NumPy and report measured times, GFLOP/s "
                          "and efficiency against this machine's matrix-multiply peak."),
        click.option("--threads", type=click.IntRange(min=1), metavar="N",
                     help="BLAS threads for --bench (default: as configured)."),
        click.option("--max-memory", callback=_quantity(True), metavar="BYTES",
                     help="Refuse to benchmark a model estimated to need more memory "
                          "(default: half the available RAM), e.g. 4GiB."),
        click.option("--bench-budget", type=click.FloatRange(min=0.01), metavar="SECONDS",
                     help="Time budget for timing each model's chain (repeats and loops are "
                          "cut to fit; at least 5 repeats are always run)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _resolve_devices(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
                     ) -> tuple[Device, ...]:
    """--device values as profiles, resolved once, before anything is analysed."""
    if not value:  # the roofline package (TOML, difflib) stays out of plain runs' start-up
        return ()
    from convcost.roofline.apply import resolve_devices
    from convcost.roofline.devices import DeviceError

    try:
        return resolve_devices(value)
    except DeviceError as error:
        raise click.BadParameter(error.message) from None


def device_option(function: F) -> F:
    """--device ID|FILE (repeatable): roofline time predictions per layer and model."""
    return click.option(
        "--device", "devices", multiple=True, callback=_resolve_devices, metavar="ID|FILE",
        help="Also predict every layer's and model's time on a device (roofline: per layer "
             "max(ops / peak, bytes / bandwidth)): a shipped id such as t4 or h100-sxm (list "
             "them with 'convcost devices'), 'local' (this machine, saved by 'convcost "
             "calibrate --save'), or a device .toml file. Repeatable.")(function)


def _with_devices(analysis: Analysis, devices: tuple[Device, ...]) -> None:
    """Attach roofline times to every analysed model (after --bench, which rebuilds them)."""
    if not devices:
        return
    from convcost.roofline.apply import apply_to_analysis

    apply_to_analysis(analysis, devices)


def _check_device_dtype(devices: tuple[Device, ...], dtype: str) -> None:
    """Usage error (exit 2) naming the device and its dtypes when one lacks --dtype's peak."""
    if not devices:
        return
    from convcost.roofline.apply import check_dtype
    from convcost.roofline.devices import DeviceError

    try:
        check_dtype(devices, dtype.lower())
    except DeviceError as error:
        raise click.UsageError(f"{error.message}; choose another --dtype or device") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="convcost")
def cli() -> None:
    """Exact MACs, FLOPs, parameters and memory of convolutional layer chains.

    \b
    Examples:
      convcost compare "256 -> 4x4(256)" "256 -> 1x1(64) -> 4x4(256)"
      convcost analyze examples/resnet50.convcost
      convcost analyze "56x56x256 -> 1x1(64) -> 3x3(64) -> 1x1(256)" --format json
    """


def _analyze(specs: tuple[str, ...], size: tuple[int, int] | None, batch: int,
             dtype: str) -> Analysis:
    return analyze_arguments(specs, Options(size=size, batch=batch, dtype=dtype.lower()))


def _report_errors(analysis: Analysis) -> None:
    """Every error to standard error, then a one-line summary when files were read or
    anything failed (chains typed on the command line need no summary)."""
    for error in analysis.errors:
        click.echo(_styled_error(error), err=True)
    if analysis.batch_input or analysis.errors:
        count, sources, bad = len(analysis.models), analysis.sources, len(analysis.errors)
        click.echo(f"convcost: {count} model{'s' if count != 1 else ''} analysed from "
                   f"{sources} source{'s' if sources != 1 else ''}; {bad} with errors",
                   err=True)


def _styled_error(error: ConvcostError) -> str:
    text = str(error)
    if os.environ.get("NO_COLOR"):
        return text
    head, _, rest = text.partition(": error: ")
    if not rest:
        return text
    return f"{head}: {click.style('error:', fg='red', bold=True)} {rest}"


def _emit_json(document: dict[str, Any]) -> None:
    """Indented JSON on a terminal; compact when piped (the C encoder is ~10x faster)."""
    import json

    indent = 2 if sys.stdout.isatty() else None
    # allow_nan=False: NaN and Infinity are not JSON; a ratio without meaning is null instead.
    click.echo(json.dumps(document, indent=indent, ensure_ascii=False, allow_nan=False))


def _emit_grids(grids: list[Any], fmt: str, machine: MachineRecord | None) -> None:
    """Grids as Markdown or rich tables, then the benchmark machine's line (with --bench)."""
    from convcost import render

    notes = [render.machine_note(machine)] if machine is not None else []
    if fmt == "markdown":
        text = "\n".join(render.to_markdown(grid) for grid in grids)
        click.echo(text + "".join(f"\n{note}\n" for note in notes), nl=False)
    else:
        from rich.text import Text
        _print_rich([*(render.to_rich(grid) for grid in grids), *map(Text, notes)])


def _print_rich(renderables: list[Any]) -> None:
    from rich.console import Console

    # Without a terminal rich assumes 80 columns, too narrow for per-layer tables; COLUMNS
    # still wins when set.
    wide = not sys.stdout.isatty() and "COLUMNS" not in os.environ
    console = Console(file=sys.stdout, width=150 if wide else None)
    for renderable in renderables:
        console.print(renderable)


@cli.command(epilog=CONVENTIONS)
@click.argument("specs", nargs=-1, required=True, metavar="SPEC_OR_FILE...")
@analysis_options()
@device_option
@bench_options
@click.pass_context
def analyze(ctx: click.Context, specs: tuple[str, ...], size: tuple[int, int] | None,
            batch: int, dtype: str, fmt: str, devices: tuple[Device, ...], bench: bool,
            threads: int | None, max_memory: int | None, bench_budget: float | None) -> None:
    """Per-layer costs of every model in SPEC_OR_FILE...

    Each argument is a chain ("56x56x64 -> 3x3(64)"), a spec file, a directory (searched for
    *.convcost), a glob pattern, or - for standard input.
    """
    _check_device_dtype(devices, dtype)
    analysis = _analyze(specs, size, batch, dtype)
    machine = _benchmark(analysis, bench, dtype, batch, threads, max_memory, bench_budget)
    _with_devices(analysis, devices)
    fmt = fmt.lower()
    if fmt == "json":
        from convcost.cost.report import document
        extra = {"machine": machine.to_json()} if machine is not None else {}
        _emit_json(document(analysis.reports, analysis.errors, **extra))
    elif fmt == "csv":
        from convcost.render import analyze_csv
        click.echo(analyze_csv(analysis.reports), nl=False)
    else:
        from convcost import render
        _emit_grids([render.analyze_grid(model) for model in analysis.reports], fmt, machine)
    _report_errors(analysis)
    ctx.exit(EXIT_BAD_INPUT if analysis.errors else EXIT_OK)


@cli.command(epilog=CONVENTIONS)
@click.argument("specs", nargs=-1, required=True, metavar="A B [C...]")
@click.option("--baseline", metavar="NAME",
              help="Model to compare against (default: the first one).")
@analysis_options()
@device_option
@bench_options
@click.pass_context
def compare(ctx: click.Context, specs: tuple[str, ...], baseline: str | None,
            size: tuple[int, int] | None, batch: int, dtype: str, fmt: str,
            devices: tuple[Device, ...], bench: bool, threads: int | None,
            max_memory: int | None, bench_budget: float | None) -> None:
    """Compare models side by side against a baseline.

    Arguments are chains or spec files (a file's models are all compared), e.g.
    convcost compare "256 -> 4x4(256)" "256 -> 1x1(64) -> 4x4(256)" or
    convcost compare examples/bottleneck.convcost.
    """
    from convcost.compare import compare as compare_models
    from convcost.compare import find_baseline
    from convcost.errors import UsageError

    _check_device_dtype(devices, dtype)
    analysis = _analyze(specs, size, batch, dtype)
    if len(analysis.models) + len(analysis.errors) < 2:
        _report_errors(analysis)
        raise click.UsageError("compare needs at least two models: give two chains, or a spec "
                               "file with several models")
    if analysis.models:
        try:  # before a benchmark that may take a while
            find_baseline(analysis.reports, baseline)
        except UsageError as error:
            _report_errors(analysis)
            raise click.UsageError(error.message) from None
    machine = _benchmark(analysis, bench, dtype, batch, threads, max_memory, bench_budget)
    _with_devices(analysis, devices)
    # Once, on the final reports (with their measurements when benchmarked).
    comparison = compare_models(analysis.reports, baseline) if analysis.models else None
    fmt = fmt.lower()
    if fmt == "json":
        from convcost.cost.report import document
        extra: dict[str, Any] = {"comparison": comparison.to_json()} if comparison else {}
        if machine is not None:
            extra["machine"] = machine.to_json()
        _emit_json(document(analysis.reports, analysis.errors, **extra))
    elif comparison is not None:
        from convcost import render
        if fmt == "csv":
            click.echo(render.compare_csv(comparison), nl=False)
        else:
            _emit_grids(render.compare_grids(comparison), fmt, machine)
    _report_errors(analysis)
    ctx.exit(EXIT_BAD_INPUT if analysis.errors else EXIT_OK)


def _benchmark(analysis: Analysis, enabled: bool, dtype: str, batch: int, threads: int | None,
               max_memory: int | None, budget: float | None) -> MachineRecord | None:
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

        result = bench_models(analysis.models, settings, show)
    for warning in result.warnings:
        click.echo(f"convcost: note: {warning}", err=True)
    analysis.models = list(result.models)
    analysis.errors.extend(result.errors)
    return result.machine


def _time_budgets(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
                  ) -> tuple[tuple[Device, float], ...]:
    """--max-time DEVICE=SECONDS values as (profile, seconds); a later one for the same
    device wins."""
    from convcost.check import parse_time_budget
    from convcost.roofline.devices import DeviceError, resolve_device

    budgets: dict[str, tuple[Device, float]] = {}
    for text in value:
        try:
            spec, seconds = parse_time_budget(text)
            device = resolve_device(spec)
        except DeviceError as error:
            raise click.BadParameter(error.message) from None
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
        budgets[device.id] = (device, seconds)
    return tuple(budgets.values())


@cli.command(epilog=CONVENTIONS)
@click.argument("specs", nargs=-1, required=True, metavar="SPEC_OR_FILE...")
@click.option("--max-macs", callback=_quantity(False), metavar="N",
              help="Fail when a model needs more MACs (SI suffixes: 4.2G, 600M).")
@click.option("--max-params", callback=_quantity(False), metavar="N",
              help="Fail when a model has more parameters (e.g. 26M).")
@click.option("--max-peak-memory", callback=_quantity(True), metavar="BYTES",
              help="Fail when peak activation memory is larger (e.g. 120MB, 1.5GiB).")
@click.option("--max-param-memory", callback=_quantity(True), metavar="BYTES",
              help="Fail when parameter memory is larger (e.g. 100MiB).")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="JSON from an earlier 'convcost analyze --format json': fail when a model "
                   "grew beyond the tolerance.")
@click.option("--tolerance", default="0%", show_default=True, metavar="PCT",
              help="Growth allowed against --baseline, e.g. 1% or 0.01.")
@click.option("--max-time", "max_times", multiple=True, callback=_time_budgets,
              metavar="DEVICE=SECONDS",
              help="Fail when a model's predicted (roofline) time on DEVICE is longer, e.g. "
                   "t4=5ms or local=0.02 (repeatable; DEVICE as for --device).")
@click.option("--all", "show_all", is_flag=True, help="List passing checks too in tables.")
@analysis_options(CHECK_FORMATS, "Verdict as a table, JSON, Markdown, or GitHub workflow "
                                 "annotations.")
@device_option
@click.pass_context
def check(ctx: click.Context, specs: tuple[str, ...], max_macs: int | None,
          max_params: int | None, max_peak_memory: int | None, max_param_memory: int | None,
          baseline_path: str | None, tolerance: str,
          max_times: tuple[tuple[Device, float], ...], show_all: bool,
          size: tuple[int, int] | None, batch: int, dtype: str, fmt: str,
          devices: tuple[Device, ...]) -> None:
    """Check models against budgets and a baseline, for CI.

    \b
    Exit codes: 0 every check passed; 1 a budget or baseline check failed;
    2 bad input or usage.
    \b
    Examples:
      convcost check specs/ --max-macs 4.2G --max-params 26M --max-peak-memory 120MB
      convcost analyze specs/ --format json > convcost-baseline.json
      convcost check specs/ --baseline convcost-baseline.json --tolerance 1%
      convcost check specs/ --max-time t4=5ms --max-time xeon-8480=20ms
    """
    from convcost import check as checks

    budgets = {key: value for key, value in (
        ("macs", max_macs), ("params", max_params), ("peak_activation_bytes", max_peak_memory),
        ("param_bytes", max_param_memory)) if value is not None}
    try:
        allowed = checks.parse_tolerance(tolerance)
    except ValueError:
        raise click.BadParameter(f"'{tolerance}' is not a tolerance like 1% or 0.01",
                                 param_hint="--tolerance") from None
    if not budgets and not max_times and baseline_path is None:
        raise click.UsageError("nothing to check: give budgets (--max-macs, --max-params, "
                               "--max-peak-memory, --max-param-memory, --max-time) or "
                               "--baseline FILE")
    from convcost.roofline.apply import resolve_devices
    try:  # both resolved already; this only merges them (and refuses clashing ids)
        devices = resolve_devices([*devices, *(device for device, _ in max_times)])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--max-time") from None
    _check_device_dtype(devices, dtype)
    baseline = None
    if baseline_path is not None:
        try:
            baseline = checks.load_baseline(baseline_path)
        except checks.BaselineError as error:
            click.echo(f"convcost: error: {error.message}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
    analysis = _analyze(specs, size, batch, dtype)
    _with_devices(analysis, devices)
    verdict = checks.run_check(analysis.reports, budgets, baseline, baseline_name=baseline_path,
                               tolerance=allowed,
                               time_budgets={device.id: limit for device, limit in max_times})
    fmt = fmt.lower()
    if fmt == "json":
        from convcost.cost.report import document
        _emit_json(document(analysis.reports, analysis.errors, check=verdict.to_json()))
    elif fmt == "github":
        from convcost.render import github_annotations
        click.echo(github_annotations(verdict, analysis.errors), nl=False)
    else:
        from convcost import render
        grid = render.check_grid(verdict, show_all=show_all)
        if fmt == "markdown":
            click.echo(render.to_markdown(grid), nl=False)
        else:
            _print_rich([render.to_rich(grid)])
    _report_errors(analysis)
    if analysis.errors:
        ctx.exit(EXIT_BAD_INPUT)
    ctx.exit(EXIT_OK if verdict.passed else EXIT_CHECK_FAILED)


@cli.command()
@click.option("--dtype", "dtypes", multiple=True, default=("float32", "float64"),
              show_default=True, type=click.Choice(["float32", "float64", "float16"]),
              help="Element types to measure the matrix-multiply peak for (repeatable).")
@click.option("--threads", type=click.IntRange(min=1), metavar="N",
              help="BLAS threads (default: as configured).")
@click.option("--quick", is_flag=True, help="Smaller, faster measurements (less accurate).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"], case_sensitive=False),
              default="table", show_default=True, help="Output format.")
@click.option("--save", "save", is_flag=False, flag_value="", default=None, metavar="[FILE]",
              help="Also write this machine's device profile (measured peaks and bandwidth) "
                   "for '--device local'; default FILE: $CONVCOST_LOCAL_PROFILE or "
                   "~/.config/convcost/local.toml.")
@click.pass_context
def calibrate(ctx: click.Context, dtypes: tuple[str, ...], threads: int | None, quick: bool,
              fmt: str, save: str | None) -> None:
    """Measure this machine's matrix-multiply peak (GFLOP/s per dtype) and memory bandwidth.

    These are the roofs --bench compares achieved GFLOP/s against. Takes a few seconds.
    With --save, they become the 'local' device of --device.
    """
    from convcost.bench import machine

    with machine.blas_threads(threads):
        click.echo("convcost: calibrating (a few seconds)...", err=True)
        result = machine.calibrate(tuple(dict.fromkeys(dtypes)), quick=quick)
    if save is not None:
        _save_profile(ctx, result, save)
    if fmt.lower() == "json":
        from convcost.cost.report import document
        _emit_json(document([], [], **result.to_json()))
        return
    from convcost import render
    _print_rich([render.to_rich(render.calibration_grid(result))])


def _save_profile(ctx: click.Context, calibration: Any, target: str) -> None:
    """Write the measured profile to ``target`` ('' = the local profile path), or exit 2."""
    from convcost.roofline.devices import DeviceError, local_profile_path
    from convcost.roofline.local import profile_from_calibration, save_profile

    try:
        path = save_profile(profile_from_calibration(calibration), target or None)
    except DeviceError as error:
        click.echo(f"convcost: error: cannot save the profile: {error.message}", err=True)
        ctx.exit(EXIT_BAD_INPUT)
    use = "--device local" if path == local_profile_path() else f"--device {path}"
    click.echo(f"convcost: saved this machine's profile to {path} (use it with {use})",
               err=True)


@cli.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"], case_sensitive=False),
              default="table", show_default=True,
              help="Output format (JSON: a convcost/1 document with a 'devices' array).")
@click.option("--verbose", "-v", is_flag=True, help="Also print each profile's sources.")
def devices(fmt: str, verbose: bool) -> None:
    """List the device profiles shipped for --device: peak FLOP/s and memory bandwidth.

    --device also takes 'local' (saved by 'convcost calibrate --save') or a .toml file with
    the same keys (name, kind, bandwidth, memory_bytes, source, [peak] dtype = FLOP/s).
    """
    from convcost.roofline.devices import device_to_json, shipped_devices

    if fmt.lower() == "json":
        from convcost.cost.report import document
        _emit_json(document([], [], devices=[device_to_json(device)
                                             for device in shipped_devices()]))
        return
    from convcost import render
    from convcost.roofline.tables import devices_grid
    _print_rich([render.to_rich(devices_grid(shipped_devices(), verbose=verbose))])


@cli.command()
def schema() -> None:
    """Print the JSON Schema of convcost's JSON output (convcost/1)."""
    from convcost.cost.report import schema_text
    click.echo(schema_text(), nl=False)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: exit codes, quiet broken pipes, no tracebacks for Ctrl-C."""
    # Analysis builds many small immutable values and no reference cycles: the cyclic
    # collector only costs time there (up to half of a large run). --bench turns it back on.
    gc.disable()
    try:
        code = cli.main(args=argv, prog_name="convcost", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("convcost: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as error:
        error.show()
        code = error.exit_code
    except KeyboardInterrupt:
        click.echo("convcost: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_OK
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    sys.exit(code if isinstance(code, int) else EXIT_OK)


def _silence_stdout() -> None:
    """After the reader of our output went away (``| head``), drop the rest quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
