"""What every convcost command shares: the click group, common options and their parsing,
and the output helpers (JSON, rich tables, errors to standard error)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

from convcost import __version__
from convcost.analysis import Analysis, Options, analyze_arguments
from convcost.cost.handlers import CONVENTIONS as COUNTING_CONVENTIONS
from convcost.cost.report import DTYPE_BYTES
from convcost.errors import ConvcostError
from convcost.lang.vocab import MAX_SIZE, whole

if TYPE_CHECKING:
    from convcost.bench.results import MachineRecord
    from convcost.cost.report import ModelReport
    from convcost.roofline.devices import Device

F = TypeVar("F", bound=Callable[..., Any])
EXIT_OK, EXIT_CHECK_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
FORMATS = ("table", "json", "markdown", "csv")
CHECK_FORMATS = ("table", "json", "markdown", "github")

CONVENTIONS = "\b\n" + COUNTING_CONVENTIONS


def parse_size(ctx: click.Context, param: click.Parameter, value: str | None
                ) -> tuple[int, int] | None:
    """--size HxW (or one number for both), ASCII digits only as in specs, each below 2^31."""
    if value is None:
        return None
    parts = value.lower().replace("×", "x").split("x")
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(_is_whole(part) for part in parts):
        raise click.BadParameter(f"{_quoted(value)} is not a size like 224x224 (or 224)")
    numbers = whole(parts[0]), whole(parts[1])
    if min(numbers) < 1 or max(numbers) > MAX_SIZE:
        raise click.BadParameter(f"sizes must be from 1 to {MAX_SIZE:,}")
    return numbers


def _is_whole(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _quoted(value: str, limit: int = 40) -> str:
    """``value`` quoted for a message, cut to ``limit`` characters: messages stay bounded."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


class WholeNumber(click.ParamType):  # type: ignore[type-arg]
    """A whole number from ``minimum`` to :data:`MAX_SIZE` written in ASCII digits (click's
    INT takes '٣' and a 5,000-digit number alike; specs refuse both)."""

    name = "integer"

    def __init__(self, minimum: int = 1, maximum: int | None = MAX_SIZE) -> None:
        self.minimum = minimum
        self.maximum = maximum  # None: any size (a count capped later, e.g. --threads)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> int:
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and _is_whole(value.strip()):
            number = whole(value.strip())
        else:
            self.fail(f"{_quoted(str(value))} is not a whole number", param, ctx)
        if number < self.minimum:
            self.fail(f"must be at least {self.minimum}", param, ctx)
        if self.maximum is not None and number > self.maximum:
            self.fail(f"must be from {self.minimum} to {self.maximum:,}", param, ctx)
        return number


class Seconds(click.FloatRange):
    """A number of seconds of at least ``min``, in ASCII digits only (as every other number:
    Python's float() takes '٣')."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        if isinstance(value, str) and not value.isascii():
            self.fail(f"{_quoted(value)} is not a number of seconds", param, ctx)
        return super().convert(value, param, ctx)


class DtypeChoice(click.Choice):  # type: ignore[type-arg]
    """``--dtype``: one of the dtype table's names; a near miss ('fp16', 'float') gets a
    did-you-mean naming the right spelling."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None
                ) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter:
            suggestion = suggest_dtype(str(value), [str(choice) for choice in self.choices])
            hint = f"; did you mean '{suggestion}'?" if suggestion else ""
            self.fail(f"{_quoted(str(value))} is not a dtype{hint} (choose from "
                      f"{', '.join(map(str, self.choices))})", param, ctx)


#: How other tools spell dtypes, to convcost's names (for did-you-mean only).
_DTYPE_SPELLINGS = {"float": "float", "fp": "float", "f": "float", "half": "float16", "single": "float32",
                    "double": "float64", "bf": "bfloat", "i": "int", "u": "uint"}


def suggest_dtype(written: str, choices: list[str]) -> str | None:
    """The dtype ``written`` most likely means ('fp16' -> 'float16'), or None."""
    import difflib
    import re

    lower = written.strip().lower()
    match = re.fullmatch(r"([a-z]+?)(\d*)", lower)
    if match and match.group(1) in _DTYPE_SPELLINGS:
        spelled = _DTYPE_SPELLINGS[match.group(1)]
        for candidate in (spelled, spelled + match.group(2), spelled + "32"):
            if candidate in choices:
                return candidate
    close = difflib.get_close_matches(lower, choices, n=1, cutoff=0.6)
    return close[0] if close else None


class SpecArgument(click.ParamType):  # type: ignore[type-arg]
    """A spec argument: kept as written; the shell completes it as a file name."""

    name = "spec"

    def shell_complete(self, ctx: click.Context, param: click.Parameter, incomplete: str
                       ) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(incomplete, type="file")]


#: The type of every SPEC_OR_FILE argument.
SPEC = SpecArgument()


def quantity(byte_units: bool) -> Callable[[click.Context, click.Parameter, str | None],
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
        click.option("--size", callback=parse_size, metavar="HxW",
                     help="Replace the spatial size of every input (e.g. 224x224)."),
        click.option("--batch", type=WholeNumber(), default=1, show_default=True,
                     help="Batch size: multiplies MACs, other ops and activation memory."),
        click.option("--dtype", type=DtypeChoice(sorted(DTYPE_BYTES), case_sensitive=False),
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
        click.option("--backend", type=click.Choice(["numpy", "torch", "torch-cuda"],
                                                    case_sensitive=False),
                     default="numpy", show_default=True,
                     help="What executes the models for --bench: convcost's NumPy kernels, or "
                          "the PyTorch modules of 'convcost export' on the CPU (torch) or a "
                          "CUDA device (torch-cuda); torch must be installed."),
        click.option("--threads", type=WholeNumber(maximum=None), metavar="N",
                     help="BLAS threads for --bench (default: as configured)."),
        click.option("--max-memory", callback=quantity(True), metavar="BYTES",
                     help="Refuse to benchmark a model estimated to need more memory "
                          "(default: half the available RAM), e.g. 4GiB."),
        click.option("--bench-budget", type=Seconds(min=0.01), metavar="SECONDS",
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


def with_devices(analysis: Analysis, devices: tuple[Device, ...]) -> None:
    """Attach roofline times to every analysed model (after --bench, which rebuilds them)."""
    if not devices:
        return
    from convcost.roofline.apply import apply_to_analysis

    apply_to_analysis(analysis, devices)


def check_device_dtype(devices: tuple[Device, ...], dtype: str) -> None:
    """Usage error (exit 2) naming the device and its dtypes when one lacks --dtype's peak."""
    if not devices:
        return
    from convcost.roofline.apply import check_dtype
    from convcost.roofline.devices import DeviceError

    try:
        check_dtype(devices, dtype.lower())
    except DeviceError as error:
        raise click.UsageError(f"{error.message}; choose another --dtype or device") from None


class _Commands(click.Group):
    """The command group; a command's module is imported when the command is first looked up
    (most runs use one command, and start-up is part of every run's time)."""

    #: Command name -> the module that defines it (the analysing commands are always loaded).
    MODULES = {"check": "check", "calibrate": "machine", "devices": "machine",
               "schema": "machine", "export": "export", "import": "importer", "plot": "plot",
               "language": "language"}

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            import importlib

            # An unknown name loads them all: click suggests close names from those it knows.
            for module in ([self.MODULES[cmd_name]] if cmd_name in self.MODULES
                           else sorted(set(self.MODULES.values()))):
                importlib.import_module(f"convcost.cli.{module}")  # registers its commands
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.MODULES})


@click.group(cls=_Commands,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, "-V", "--version", prog_name="convcost")
def cli() -> None:
    """Exact MACs, FLOPs, parameters and memory of convolutional layer chains.

    \b
    Examples:
      convcost compare "256 -> 4x4(256)" "256 -> 1x1(64) -> 4x4(256)"
      convcost analyze examples/resnet50.convcost
      convcost analyze "56x56x256 -> 1x1(64) -> 3x3(64) -> 1x1(256)" --format json
    """


def analyze_specs(specs: tuple[str, ...], size: tuple[int, int] | None, batch: int,
             dtype: str) -> Analysis:
    return analyze_arguments(specs, Options(size=size, batch=batch, dtype=dtype.lower()))


def report_errors(analysis: Analysis) -> None:
    """Every error to standard error, then a one-line summary when files were read or
    anything failed (chains typed on the command line need no summary)."""
    for warning in analysis.warnings:
        click.echo(str(warning), err=True)
    for error in analysis.errors:
        click.echo(_styled_error(error), err=True)
    if analysis.batch_input or analysis.errors:
        count, sources, bad = analysis.count, analysis.sources, len(analysis.errors)
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


def emit_json(document: dict[str, Any]) -> None:
    """Indented JSON on a terminal; compact when piped (the C encoder is ~10x faster)."""
    import json

    indent = 2 if sys.stdout.isatty() else None
    # allow_nan=False: NaN and Infinity are not JSON; a ratio without meaning is null instead.
    click.echo(json.dumps(document, indent=indent, ensure_ascii=False, allow_nan=False,
                          separators=None if indent else (",", ":")))


def emit_document(models: Sequence[ModelReport], errors: Sequence[ConvcostError], *,
                  rendered: Sequence[str] = (), **extra: Any) -> None:
    """The convcost/1 document of ``models`` (then the ``rendered`` ones): indented on a
    terminal, compact when piped."""
    from convcost.cost.report import document_parts, document_text

    # Written directly, piece by piece: click.echo would scan the whole (large) text for ANSI
    # codes to strip, and a 100,000-layer document need never be one string.
    write = sys.stdout.write
    if sys.stdout.isatty():
        write(document_text(models, errors, indent=2, **extra))
    else:
        for part in document_parts(models, errors, rendered=rendered, **extra):
            write(part)
    write("\n")


def emit_grids(grids: list[Any], fmt: str, machine: MachineRecord | None) -> None:
    """Grids as Markdown or text tables, then the benchmark machine's line (with --bench)."""
    from convcost import render

    notes = [render.machine_note(machine)] if machine is not None else []
    if fmt == "markdown":
        text = "\n".join(render.to_markdown(grid) for grid in grids)
        click.echo(text + "".join(f"\n{note}\n" for note in notes), nl=False)
    else:
        print_grids(grids, notes)


def print_grids(grids: Sequence[Any], notes: Sequence[str] = ()) -> None:
    """Grids as plain-text tables fitted to :func:`output_width`, then ``notes``."""
    from convcost.render_text import to_text, wrap_note

    width, glyphs, color = output_width(), output_glyphs(), output_color()
    for number, grid in enumerate(grids):
        if number:  # a blank line between tables: one model's notes ran into the next title
            sys.stdout.write("\n")
        # Written directly: click.echo would scan a large table for ANSI codes to strip.
        sys.stdout.write(to_text(grid, width, glyphs=glyphs, color=color))
    for note in notes:
        sys.stdout.write("".join(line + "\n" for line in wrap_note(note, width)))


def output_width() -> int:
    """Columns for tables: the terminal's width on a terminal; else ``COLUMNS``, or 100 when
    it is unset (or not a positive number)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return min(int(columns), 10_000)
    if sys.stdout.isatty():
        import shutil

        return shutil.get_terminal_size((100, 24)).columns
    return 100


def output_color() -> bool:
    """Bold titles and headers: on a terminal, or with FORCE_COLOR (not 0); never with
    NO_COLOR."""
    if os.environ.get("NO_COLOR"):
        return False
    forced = os.environ.get("FORCE_COLOR")
    if forced is not None and forced != "":
        return forced != "0"
    return sys.stdout.isatty()


def output_glyphs() -> Any:
    """Rule and bar characters standard output can encode (ASCII ones otherwise)."""
    from convcost.render_text import ASCII, UNICODE

    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "".join(UNICODE).encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return ASCII
    return UNICODE
