"""Views of a report for tables, Markdown and CSV: ``--depth`` (rows below a depth summed into
their block), ``--top``/``--sort`` (the heaviest layers) and ``--summary`` (one row per
model), plus the names that tell models apart.

Views build new :class:`~convcost.cost.report.ModelReport` values (a block is one
``LayerReport`` holding its layers' sums), so every renderer shows them unchanged. JSON keeps
every layer: it is the complete record.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from convcost.cost.report import SORT_KEYS, LayerReport, ModelReport
from convcost.errors import UsageError

#: ``--sort`` keys and what they sort by (largest first).
#: How a block is named after the path segment that follows its position.
_BLOCK_KINDS = {"body": "residual", "short": "residual", "add": "residual", "gate": "gate",
                "mul": "gate", "concat": "branches", "slice": "split"}


def display_names(models: Sequence[ModelReport]) -> list[str]:
    """Each model's name as tables and CSV show it: qualified by its source where names
    repeat (``SOURCE:NAME``, what ``--baseline`` takes; see
    :func:`convcost.compare.model_labels`)."""
    from convcost.compare import model_labels

    return model_labels(models)


def block_of(path: str, depth: int) -> str:
    """The path of the block that holds ``path`` at nesting ``depth`` (1 = top-level
    positions): ``block_of('5.body.3', 1) == '5'``, ``block_of('5.b2.1.body.2', 2) ==
    '5.b2.1'``; a path already at or above ``depth`` is its own block."""
    numbers = 0
    parts = path.split(".")
    for position, part in enumerate(parts):
        if part.isdigit():
            numbers += 1
            if numbers == depth:
                return ".".join(parts[:position + 1])
    return path


def aggregate(model: ModelReport, depth: int) -> ModelReport:
    """``model`` with the layers below ``depth`` summed into one row per block (in order)."""
    groups: list[list[LayerReport]] = []
    keys: list[str] = []
    for layer in model.layers:
        key = block_of(layer.path, depth)
        if keys and keys[-1] == key:
            groups[-1].append(layer)
        else:
            keys.append(key)
            groups.append([layer])
    return model._replace(layers=tuple(
        group[0] if len(group) == 1 and group[0].path == key else _block(key, group)
        for key, group in zip(keys, groups)))


def _block(path: str, layers: list[LayerReport]) -> LayerReport:
    """One row for a block: sums of its layers, the last one's output (what the block
    returns) and its input."""
    first, last = layers[0], layers[-1]
    inner = last.path[len(path) + 1:].split(".")[0] if last.path != path else ""
    kind = _BLOCK_KINDS.get(inner, "branches" if inner.startswith("b") else "block")
    benches = [layer.bench for layer in layers]
    bench = None
    if all(timing is not None for timing in benches):
        from convcost.bench.results import LayerBench

        median = sum(timing.median_s for timing in benches if timing is not None)
        macs = sum(layer.macs for layer in layers)
        bench = LayerBench(median, sum(timing.iqr_s for timing in benches if timing is not None),
                           2 * macs / median / 1e9 if median > 0 else 0.0, None, "",
                           all(timing.stable for timing in benches if timing is not None))
    roofline = tuple(
        type(times[0])(device=times[0].device, name=times[0].name,
                       time_s=sum(time.time_s for time in times),
                       bound=max(("compute", "memory"), key=lambda bound: sum(
                           time.time_s for time in times if time.bound == bound))
                       )
        for times in zip(*(layer.roofline for layer in layers))) if first.roofline else ()
    return LayerReport(
        first.index, path, "block", f"{kind} ({len(layers)} layers)", first.input, last.output,
        sum(layer.macs for layer in layers), sum(layer.other_ops for layer in layers),
        sum(layer.params for layer in layers), sum(layer.buffers for layer in layers),
        sum(layer.param_bytes for layer in layers), last.output_bytes,
        sum(layer.traffic_bytes for layer in layers), bench, roofline)


class Heaviest(NamedTuple):
    """A model's heaviest rows and the sentence that says what they are."""

    model: ModelReport
    note: str


def heaviest(model: ModelReport, sort: str, top: int | None) -> Heaviest:
    """``model`` with its rows sorted by ``sort`` (largest first), the first ``top`` kept."""
    key = _sort_key(model, sort)
    rows = sorted(model.layers, key=key, reverse=True)
    kept = rows[:top] if top is not None else rows
    what = {"macs": "MACs", "params": "params", "memory": "output memory",
            "time": "time"}[sort]
    note = f"{len(kept)} of {len(model.layers)} rows, sorted by {what}"
    if top is not None and sort in ("macs", "params"):
        whole = getattr(model.totals, sort)
        if whole:
            held = sum(getattr(layer, sort) for layer in kept)
            note += f"; they hold {100 * held / whole:.1f}% of the {what}"
    return Heaviest(model._replace(layers=tuple(kept)), note)


def heaviest_models(models: Sequence[ModelReport], sort: str, top: int | None
                    ) -> list[ModelReport]:
    """``--summary`` with ``--sort``/``--top``: models largest first by their totals (MACs,
    params, peak activation memory, or measured / first predicted time)."""
    def key(model: ModelReport) -> int | float:
        if sort == "time":
            if model.bench is not None:
                return model.bench.median_s
            return model.roofline[0].time_s if model.roofline else -1.0
        field = {"macs": "macs", "params": "params",
                 "memory": "peak_activation_bytes"}[sort]
        count: int = getattr(model.totals, field)  # exact: huge counts order correctly
        return count

    ordered = sorted(models, key=key, reverse=True)
    return ordered[:top] if top is not None else ordered


def _sort_key(model: ModelReport, sort: str) -> Callable[[LayerReport], float]:
    if sort == "macs":
        return lambda layer: layer.macs
    if sort == "params":
        return lambda layer: layer.params
    if sort == "memory":
        return lambda layer: layer.output_bytes
    if sort == "time":
        if any(layer.bench is not None for layer in model.layers):
            return lambda layer: layer.bench.median_s if layer.bench is not None else -1.0
        if model.layers and model.layers[0].roofline:
            return lambda layer: layer.roofline[0].time_s
        raise UsageError("--sort time needs times: add --bench, or --device for predicted "
                         "ones", "--sort")
    raise UsageError(f"--sort takes one of {', '.join(SORT_KEYS)}", "--sort")


def summary_rows(models: Sequence[ModelReport]) -> tuple[list[str], list[list[object]]]:
    """One CSV row per model: exact totals (and the measured time with --bench)."""
    header = ["model", "source", "line", "input", "output", "layers", "batch", "dtype", "macs",
              "flops", "other_ops", "params", "buffers", "param_bytes",
              "peak_activation_bytes"]
    benched = any(model.bench is not None for model in models)
    if benched:
        header += ["time_s", "iqr_s", "stable"]
    rows: list[list[object]] = []
    for name, model in zip(display_names(models), models):
        totals = model.totals
        row: list[object] = [name, model.source, model.line, str(model.input),
                             str(model.output), len(model.layers), model.batch, model.dtype,
                             totals.macs, totals.flops, totals.other_ops, totals.params,
                             totals.buffers, totals.param_bytes, totals.peak_activation_bytes]
        if benched:
            bench = model.bench
            row += [None, None, None] if bench is None else \
                [bench.median_s, bench.iqr_s, bench.stable]
        rows.append(row)
    return header, rows


def summary_title(models: Sequence[ModelReport]) -> str:
    """'3 models (batch 1, float32)'."""
    batches = sorted({model.batch for model in models})
    dtypes = sorted({model.dtype for model in models})
    return (f"{len(models)} model{'s' if len(models) != 1 else ''} (batch "
            f"{', '.join(map(str, batches))}, {', '.join(dtypes)})")


def peak_note(models: Sequence[ModelReport]) -> str:
    """The heaviest model by MACs, for the summary's note."""
    from convcost import units

    names = display_names(models)
    position = max(range(len(models)), key=lambda position: models[position].totals.macs)
    return f"most MACs: {names[position]} with {units.count(models[position].totals.macs)}"
