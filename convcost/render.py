"""Rendering reports: rich tables, Markdown and CSV. Functions return renderables or strings;
they never print (the CLI decides where output goes).

Tables are described once as :class:`Grid` (columns with a kind, rows of raw values); the
rich, Markdown and CSV renderers format the same grid, so human units (``1.05M``) appear in
tables and Markdown while CSV keeps exact integers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from convcost import units
from convcost.compare import Comparison, bench_seconds
from convcost.cost.report import ModelReport
from convcost.errors import ConvcostError
from convcost.render_text import UNICODE, Glyphs
from convcost.render_views import display_names, summary_rows, summary_title

if TYPE_CHECKING:  # rich is imported lazily: JSON output must not pay for it
    from rich.console import RenderableType

    from convcost.bench.results import MachineRecord, ModelBench
    from convcost.check import Verdict

BAR_WIDTH = 10
#: Text columns that must never wrap (short, and unreadable when broken).
NO_WRAP = frozenset({"path", "output"})


class Column(NamedTuple):
    """A column: ``kind`` is 'text', 'count', 'bytes', 'float', 'share' or 'ratio'.

    ``priority`` orders what a narrow table drops: 0 is a key column, never dropped; the
    highest goes first. ``wraps`` marks free text that may wrap onto several lines.
    """

    name: str
    kind: str = "text"
    priority: int = 1
    wraps: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


class Grid:
    """A table as data: a title, columns, rows of raw values, an optional footer row and notes.

    A plain class rather than a dataclass: tables are built on the CLI's start-up path, and
    ``dataclasses`` costs more to import than rendering a ResNet-50 table.
    """

    __slots__ = ("title", "columns", "rows", "footer", "notes")

    def __init__(self, title: str, columns: list[Column], rows: list[list[Any]] | None = None,
                 footer: list[Any] | None = None, notes: list[str] | None = None) -> None:
        self.title = title
        self.columns = columns
        self.rows: list[list[Any]] = rows if rows is not None else []
        self.footer = footer
        self.notes: list[str] = notes if notes is not None else []

    def __repr__(self) -> str:
        return f"Grid({self.title!r}, {len(self.columns)} columns, {len(self.rows)} rows)"


def cells(row: Sequence[Any], columns: Sequence[Column], *, bars: bool,
          glyphs: Glyphs = UNICODE) -> list[str]:
    """Human text of one row's raw values."""
    # The common kinds straight to their formatter: this runs per cell of large tables.
    return ["-" if value is None else
            _FAST[column.kind](value) if column.kind in _FAST else
            _cell(value, column.kind, bars=bars, glyphs=glyphs)
            for value, column in zip(row, columns)]


#: Formatters of the kinds that need no options (exact integers for counts and bytes).
_FAST: dict[str, Callable[[Any], str]] = {"count": units.count, "bytes": units.nbytes,
                                          "text": str}


def _cell(value: Any, kind: str, *, bars: bool, glyphs: Glyphs = UNICODE) -> str:
    """Human text of one raw value."""
    if value is None:
        return "-"
    if kind == "count":  # the common cases first: this runs per cell of large tables
        return units.count(int(value))
    if kind == "bytes":
        return units.nbytes(int(value))
    if kind == "amount":  # (unit kind, value) chosen per row
        unit, amount = value
        return _cell(amount, str(unit), bars=bars, glyphs=glyphs)
    if kind == "change":
        return f"{value * 100:+.2f}%"
    if kind == "percent":
        return f"{value * 100:.0f}%"
    if kind == "measured":  # (seconds, stable): '?' marks an unstable measurement
        time_s, stable = value
        return units.seconds(float(time_s)) + (" " if stable else "?")
    if kind == "seconds":
        return units.seconds(float(value))
    if kind == "roofline":  # (seconds, bound): '*' marks memory-bound times
        time_s, bound = value
        return units.seconds(float(time_s)) + ("*" if bound == "memory" else " ")
    if kind == "speedup":  # (seconds, baseline seconds / seconds; a word for the baseline)
        time_s, ratio = value
        if time_s is None:
            return "-"
        shown = ratio if isinstance(ratio, str) else units.times(ratio)
        return f"{units.seconds(float(time_s))} {shown:>5}"
    if kind == "float":
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    if kind == "share":
        percent = f"{100 * value:4.1f}%"
        if not bars:
            return percent
        filled: int = round(value * BAR_WIDTH)
        return glyphs.filled * filled + glyphs.empty * (BAR_WIDTH - filled) + " " + percent
    return str(value)


# -- grids ------------------------------------------------------------------------------------


def analyze_grid(model: ModelReport, name: str | None = None) -> Grid:
    """Per-layer table of one model, with a totals footer (and measured columns if benched);
    ``name`` replaces the model's name in the title (see :func:`display_names`)."""
    totals = model.totals
    bench = model.bench
    grid = Grid(
        title=f"{name or model.name}  ({model.input} -> {model.output}, batch {model.batch}, "
              f"{model.dtype})",
        # Priorities: what an 80-column terminal drops first (highest first).
        columns=[Column("path", priority=0, wraps=True), Column("layer", priority=0, wraps=True),
                 Column("output", priority=4), Column("MACs", "count", priority=0),
                 Column("share", "share", priority=5), Column("params", "count"),
                 Column("out mem", "bytes", priority=3), Column("FLOP/B", "float", priority=7)],
    )
    if bench:
        grid.columns += [Column("time", "measured", priority=2),
                         Column("GFLOP/s", "float", priority=6),
                         Column("eff.", "percent", priority=5),
                         Column("algorithm", priority=8)]
    for layer in model.layers:
        share = layer.macs / totals.macs if totals.macs else 0.0
        row = [layer.path, layer.text, str(layer.output), layer.macs, share, layer.params,
               layer.output_bytes, layer.intensity]
        if bench:
            timing = layer.bench
            if timing is None:
                row += [None, None, None, ""]
            else:
                flag = f" ({timing.efficiency_flag})" if timing.efficiency_flag else ""
                row += [(timing.median_s, timing.stable), timing.gflops if layer.macs else None,
                        timing.efficiency, timing.algorithm + flag]
        grid.rows.append(row)
    grid.footer = ["", "total", str(model.output), totals.macs, 1.0 if totals.macs else 0.0,
                   totals.params, None, None]
    if bench:
        grid.footer += [(bench.median_s, not bench_flags(bench)), bench.gflops, None, ""]
        grid.notes.append(_bench_note(bench))
        unstable = sum(1 for layer in model.layers
                       if layer.bench is not None and not layer.bench.stable)
        if unstable:
            grid.notes.append(f"{unstable} layer time{'s' if unstable != 1 else ''} unstable "
                              f"(marked ?): the spread of the repeats is large")
    grid.notes.append(
        f"MACs {totals.macs:,}  FLOPs {totals.flops:,}  other ops {totals.other_ops:,}  "
        f"params {totals.params:,} ({units.nbytes(totals.param_bytes)})  buffers "
        f"{totals.buffers:,}  peak activations {units.nbytes(totals.peak_activation_bytes)}")
    if model.roofline:  # --device: a time column per device (imported only when predicted)
        from convcost.roofline.tables import extend_analyze_grid
        extend_analyze_grid(grid, model)
    return grid


def compare_grids(comparison: Comparison) -> list[Grid]:
    """The comparison table, and with ``--device`` the predicted-speedup table after it."""
    grids = [compare_grid(comparison)]
    if comparison.baseline.roofline:
        from convcost.roofline.tables import compare_grid as predicted_grid
        predicted = predicted_grid(comparison)
        if predicted is not None:
            grids.append(predicted)
    return grids


def compare_grid(comparison: Comparison) -> Grid:
    """One row per model with its totals and how it compares to the baseline."""
    base = comparison.baseline
    grid = Grid(
        title=f"compared with {comparison.label(base)}",
        columns=[Column("model", priority=0, wraps=True), Column("MACs", "count", priority=0),
                 Column("FLOPs", "count", priority=5), Column("params", "count"),
                 Column("param mem", "bytes", priority=4),
                 Column("peak act.", "bytes", priority=3),
                 Column("MACs vs base", "ratio", priority=0)],
    )
    benched = any(bench_seconds(model) is not None for model in comparison.models)
    if benched:
        grid.columns += [Column("time", "measured", priority=2),
                         Column("speedup pred/meas", "ratio", priority=2)]
    for model in comparison.models:
        totals = model.totals
        row = [comparison.label(model), totals.macs, totals.flops, totals.params,
               totals.param_bytes, totals.peak_activation_bytes,
               "baseline" if model is base else units.ratio_words(totals.macs, base.totals.macs)]
        if benched:
            predicted = comparison.predicted_speedup(model)
            measured = comparison.measured_speedup(model)
            flagged = model.bench is not None and bool(bench_flags(model.bench))
            row += [None if model.bench is None else (model.bench.median_s, not flagged),
                    "baseline" if model is base else
                    f"{units.times(predicted)} / {units.times(measured)}"
                    + ("" if comparison.measured_reliable(model) else " ?")]
        grid.rows.append(row)
    if benched:
        for model in comparison.models:
            if model.bench is not None and bench_flags(model.bench):
                grid.notes.append(f"{comparison.label(model)}: measured time {', '.join(bench_flags(model.bench))}"
                                  f" (marked ?); its measured speedup is not reliable")
    for model in comparison.models:
        if model is base:
            continue
        exact = ""
        if model.totals.macs and base.totals.macs and model.totals.macs != base.totals.macs:
            exact = (f" ({model.totals.macs:,} vs {base.totals.macs:,} MACs; exactly "
                     f"{units.exact_ratio(model.totals.macs, base.totals.macs)})")
        grid.notes.append(f"{comparison.label(model)} vs {comparison.label(base)}: "
                          f"{', '.join(comparison.phrases(model))}{exact}")
        if benched:
            grid.notes.append(f"  speedup over {comparison.label(base)}: predicted "
                              f"{units.times(comparison.predicted_speedup(model))} (from MACs), "
                              f"measured {units.times(comparison.measured_speedup(model))}"
                              f"{_reliability(comparison, model)}")
    return grid


def calibration_grid(result: Any) -> Grid:
    """This machine's BLAS and roofs (a :class:`convcost.bench.Calibration`)."""
    info = result.machine
    grid = Grid(title="convcost calibrate", columns=[Column("measure", priority=0, wraps=True),
                                                        Column("value", priority=0)])
    grid.rows += [["BLAS", info.blas], ["BLAS architecture", info.blas_arch],
                  ["BLAS threads", str(info.threads)], ["CPUs", str(info.cpu_count)]]
    for dtype, peak in result.gemm_peak_gflops.items():
        grid.rows.append([f"matrix-multiply peak ({dtype})", f"{peak:.1f} GFLOP/s"])
    grid.rows.append(["memory bandwidth (copy)", f"{result.memory_bandwidth_gbs:.1f} GB/s"])
    grid.notes.extend(f"warning: {warning}" for warning in result.warnings)
    return grid


def machine_note(machine: MachineRecord) -> str:
    """'benchmarked with openblas 0.3.31 (SkylakeX), 2 BLAS threads; float32 peak 198.8 GFLOP/s'."""
    backend = "" if machine.backend == "numpy" else f"the {machine.backend} backend: "
    threads = "BLAS" if machine.backend == "numpy" else "torch"
    # A peak of 0.0 was not measured (a dtype NumPy cannot multiply, too little memory).
    peak = (f"{machine.gemm_peak_gflops:.1f} GFLOP/s" if machine.gemm_peak_gflops > 0
            else "not measured")
    return (f"benchmarked with {backend}{machine.blas} ({machine.blas_arch}), {machine.threads} "
            f"{threads} thread{'s' if machine.threads != 1 else ''} on {machine.cpu_count} CPUs; "
            f"{machine.dtype} matrix-multiply peak {peak}")


def bench_flags(bench: ModelBench) -> list[str]:
    """What makes a measurement doubtful, as words: 'unstable' (spread), 'unsteady' (the
    GEMM probes around the timed blocks disagreed), 'contended' (other processes held the
    cores); [] for a reliable measurement."""
    return [flag for flag, on in (("unstable", not bench.stable),
                                  ("unsteady", not bench.probes_agree),
                                  ("contended", bench.contended)) if on]


def _bench_flags(bench: ModelBench) -> str:
    """'UNSTABLE, CONTENDED', or '' for a reliable measurement."""
    return ", ".join(flag.upper() for flag in bench_flags(bench))


def _reliability(comparison: Comparison, model: ModelReport) -> str:
    """'' when both timings were reliable, else ' (UNRELIABLE: base: UNSTABLE; b: CONTENDED)'
    naming each unreliable model (``analyze --bench`` shows why, in its warnings)."""
    if comparison.measured_reliable(model):
        return ""
    reasons = [f"{report.name}: {_bench_flags(report.bench)}"
               for report in (comparison.baseline, model)
               if report.bench is not None and not report.bench.reliable]
    return f" (UNRELIABLE: {'; '.join(reasons)})"


def _bench_note(bench: ModelBench) -> str:
    """'measured 12.3 ms per batch (IQR 0.21 ms, 5 x 20 runs), 85.2 GFLOP/s, stable'."""
    flags = _bench_flags(bench)
    note = (f"measured {units.seconds(bench.median_s)} per batch (IQR "
            f"{units.seconds(bench.iqr_s)}, {bench.repeats} x {bench.loops} runs), "
            f"{bench.gflops:.1f} GFLOP/s, {flags or 'stable'}")
    return note + "".join(f"\n  warning: {warning}" for warning in bench.warnings)


def check_grid(verdict: Verdict, *, show_all: bool = False) -> Grid:
    """The verdict table: failures always, passing checks with ``show_all`` or when few."""
    from convcost.check import metric_kind, metric_name

    shown = list(verdict.results) if show_all or len(verdict.results) <= 40 else \
        verdict.failures
    grid = Grid(
        title=f"convcost check: {verdict.status}",
        columns=[Column("model", priority=0, wraps=True), Column("metric", priority=0),
                 Column("baseline", "amount", priority=2), Column("now", "amount", priority=0),
                 Column("change", "change", priority=0), Column("limit", "amount"),
                 Column("result", priority=0)],
    )
    for result in shown:
        kind = metric_kind(result.metric)
        grid.rows.append([result.model, metric_name(result.metric),
                          (kind, result.baseline), (kind, result.now), result.change,
                          (kind, result.limit), "pass" if result.passed else "FAIL"])
    failed = len(verdict.failures)
    grid.notes.append(f"{len(verdict.results) - failed} checks passed, {failed} failed"
                      + (f" ({len(verdict.results) - len(shown)} passing not shown; --all "
                         f"lists them)" if len(shown) < len(verdict.results) else ""))
    grid.notes.extend(f"FAIL {result.model}: {result.reason}" for result in verdict.failures)
    if verdict.added:
        grid.notes.append("added since the baseline: " + ", ".join(verdict.added))
    if verdict.removed:
        grid.notes.append("removed since the baseline: " + ", ".join(verdict.removed))
    grid.notes.extend(f"renamed: {rename.old} -> {rename.new} ({rename.source}:{rename.line}; "
                      f"checked against the old name)" for rename in verdict.renamed)
    if verdict.errors:
        grid.notes.append(f"ERROR: {verdict.errors} input{'s' if verdict.errors != 1 else ''} "
                          f"could not be analysed (see standard error)")
    return grid


def github_annotations(verdict: Verdict, errors: list[ConvcostError]) -> str:
    """GitHub Actions workflow commands: an ``::error`` per spec error and failed check."""
    lines = []
    for error in errors:
        lines.append(f"::error file={_escape_property(error.source)}"
                     f"{_place(error.line, error.column)},"
                     f"title=convcost spec error::{_escape_data(error.message)}")
    for result in verdict.failures:
        lines.append(f"::error file={_escape_property(result.source)}{_place(result.line)},"
                     f"title=convcost budget::{_escape_data(result.model + ': ' + result.reason)}")
    for rename in verdict.renamed:
        lines.append(f"::warning file={_escape_property(rename.source)}{_place(rename.line)},"
                     f"title=convcost model renamed::{_escape_data(rename.old)} is now "
                     f"{_escape_data(rename.new)}; checked against the baseline's "
                     f"{_escape_data(rename.old)}")
    lines.extend(f"::warning title=convcost model added::{_escape_data(name)} is not in the "
                 f"baseline" for name in verdict.added)
    lines.extend(f"::warning title=convcost model removed::{_escape_data(name)} is in the "
                 f"baseline but was not analysed" for name in verdict.removed)
    status = "passed" if verdict.passed and not errors else \
        "error" if verdict.errors or errors else "failed"
    checks = len(verdict.results)
    lines.append(f"::notice title=convcost check::{checks} check{'s' if checks != 1 else ''}, "
                 f"{len(verdict.failures)} failed, {len(errors)} spec errors: {status}")
    return "\n".join(lines) + "\n"


def _place(line: int, column: int = 0) -> str:
    """',line=L,col=C' of an annotation; GitHub wants none rather than 0 (an unreadable file,
    an ONNX model: no line to point at)."""
    if line <= 0:
        return ""
    return f",line={line}" + (f",col={column}" if column > 0 else "")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


# -- renderers --------------------------------------------------------------------------------


def to_rich(grid: Grid) -> RenderableType:
    """A rich renderable: the table (numbers right-aligned) and its notes below."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(grid.title, style="bold"), box=box.SIMPLE_HEAD,
                  show_footer=grid.footer is not None, title_justify="left",
                  collapse_padding=True, pad_edge=False)
    for position, column in enumerate(grid.columns):
        footer = Text(_cell(grid.footer[position], column.kind, bars=False)) \
            if grid.footer is not None else Text("")
        longest = max((len(_cell(row[position], column.kind, bars=True)) for row in grid.rows),
                      default=0)
        table.add_column(column.name, justify="right" if column.numeric else "left",
                         footer=footer, no_wrap=column.numeric or column.name in NO_WRAP,
                         min_width=None if column.numeric else min(longest, 16),
                         style="cyan" if column.kind == "share" else None)
    for row in grid.rows:
        table.add_row(*(Text(_cell(value, column.kind, bars=True))
                        for value, column in zip(row, grid.columns)))
    return Group(table, *(Text("  " + note) for note in grid.notes), Text(""))


def to_markdown(grid: Grid) -> str:
    """A GitHub-flavoured Markdown table with a heading and notes (for pull-request comments)."""
    def line(cells: Sequence[str]) -> str:
        # Stripped: padding that aligns rich columns (' 0.0%', '5 us ') is noise here.
        return "| " + " | ".join(cell.strip().replace("|", "\\|") for cell in cells) + " |"

    lines = [f"### {grid.title}", "", line([column.name for column in grid.columns]),
             line(["---:" if column.numeric else "---" for column in grid.columns])]
    for row in grid.rows:
        lines.append(line([_cell(value, column.kind, bars=False)
                           for value, column in zip(row, grid.columns)]))
    if grid.footer is not None:
        lines.append(line([f"**{_cell(value, column.kind, bars=False).strip()}**" if value not in
                           ("", None) else "" for value, column in zip(grid.footer,
                                                                       grid.columns)]))
    lines.extend(["", *(f"{note}  " for note in grid.notes)] if grid.notes else [])
    return "\n".join(lines) + "\n"


def to_csv(header: list[str], rows: list[list[Any]]) -> str:
    """CSV text with exact values (integers stay integers)."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return buffer.getvalue()


def analyze_csv(models: list[ModelReport]) -> str:
    """One row per layer of every model, exact integers."""
    header = ["model", "index", "path", "kind", "layer", "input", "output", "macs", "flops",
              "other_ops", "params", "buffers", "param_bytes", "output_bytes", "traffic_bytes",
              "intensity"]
    rows = [[name, layer.index, layer.path, layer.kind, layer.text, str(layer.input),
             str(layer.output), layer.macs, layer.flops, layer.other_ops, layer.params,
             layer.buffers, layer.param_bytes, layer.output_bytes, layer.traffic_bytes,
             None if layer.intensity is None else round(layer.intensity, 4)]
            for name, model in zip(display_names(models), models) for layer in model.layers]
    if any(model.bench is not None for model in models):  # --bench: the measured columns
        header += ["time_s", "iqr_s", "gflops", "efficiency", "algorithm", "stable", "backend"]
        timings = [(layer.bench, model.bench) for model in models for layer in model.layers]
        rows = [row + ([None] * 7 if timing is None or bench is None else
                       [timing.median_s, timing.iqr_s, round(timing.gflops, 6),
                        None if timing.efficiency is None else round(timing.efficiency, 6),
                        timing.algorithm, timing.stable, bench.backend])
                for row, (timing, bench) in zip(rows, timings)]
    if any(model.roofline for model in models):  # --device: seconds and bound per device
        from convcost.roofline.tables import layer_csv
        extra_header, extra_rows = layer_csv(models)
        header += extra_header
        rows = [row + extra for row, extra in zip(rows, extra_rows)]
    return to_csv(header, rows)


def compare_csv(comparison: Comparison) -> str:
    """One row per model: exact totals and ratios to the baseline (model / baseline)."""
    header = ["model", "macs", "flops", "other_ops", "params", "buffers", "param_bytes",
              "peak_activation_bytes", "macs_ratio", "params_ratio", "peak_ratio"]
    rows = []
    benched = any(model.bench is not None for model in comparison.models)
    for model in comparison.models:
        totals = model.totals
        ratios = [comparison.ratio(model, key) for key in
                  ("macs", "params", "peak_activation_bytes")]
        rows.append([comparison.label(model), totals.macs, totals.flops, totals.other_ops,
                     totals.params, totals.buffers, totals.param_bytes, totals.peak_activation_bytes,
                     *(None if value is None else round(value, 6) for value in ratios)])
        if benched:  # --bench: the measurement, its flags and the measured speedup
            bench = model.bench
            speedup = comparison.measured_speedup(model)
            rows[-1] += [None] * 5 if bench is None else \
                [bench.median_s, bench.iqr_s, bench.stable, " ".join(bench_flags(bench)),
                 None if speedup is None else round(speedup, 6)]
    if benched:
        header += ["time_s", "iqr_s", "stable", "flags", "measured_speedup"]
    if comparison.baseline.roofline:  # --device: seconds and speedup per device
        from convcost.roofline.tables import model_csv
        extra_header, extra_rows = model_csv(comparison)
        header += extra_header
        rows = [row + extra for row, extra in zip(rows, extra_rows)]
    return to_csv(header, rows)


def summary_grid(models: Sequence[ModelReport]) -> Grid:
    """``--summary``: one row per model with its totals (and measured time with --bench)."""
    grid = Grid(title=summary_title(models),
                columns=[Column("model", priority=0, wraps=True), Column("input", priority=6),
                         Column("output", priority=5), Column("layers", "count", priority=4),
                         Column("MACs", "count", priority=0), Column("FLOPs", "count", priority=7),
                         Column("params", "count", priority=0),
                         Column("param mem", "bytes", priority=3),
                         Column("peak act.", "bytes", priority=2)])
    benched = any(model.bench is not None for model in models)
    if benched:
        grid.columns.append(Column("time", "measured", priority=1))
    devices = [time.device for time in models[0].roofline] if models else []
    for device in devices:
        grid.columns.append(Column(f"t@{device}", "roofline", priority=2))
    for name, model in zip(display_names(models), models):
        totals = model.totals
        row: list[Any] = [name, str(model.input), str(model.output), len(model.layers),
                          totals.macs, totals.flops, totals.params, totals.param_bytes,
                          totals.peak_activation_bytes]
        if benched:
            row.append(None if model.bench is None else
                       (model.bench.median_s, not bench_flags(model.bench)))
        times = {time.device: time for time in model.roofline}
        row += [(times[device].time_s, times[device].bound) if device in times else None
                for device in devices]
        grid.rows.append(row)
    if len(models) > 1:
        from convcost.render_views import peak_note
        grid.notes.append(peak_note(models))
    return grid


def summary_csv(models: Sequence[ModelReport]) -> str:
    """``--summary --format csv``: one row per model, exact integers."""
    header, rows = summary_rows(models)
    return to_csv(header, [list(row) for row in rows])
