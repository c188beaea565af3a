"""Comparing models against a baseline: exact ratios and the sentences people read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from convcost.cost.report import COMPARED_METRICS, ModelReport
from convcost.errors import UsageError
from convcost.units import ratio_phrase


class Comparison(NamedTuple):
    """Models side by side against ``baseline`` (one of ``models``); ``labels`` name them in
    tables and CSV (see :func:`model_labels`)."""

    baseline: ModelReport
    models: tuple[ModelReport, ...]
    labels: tuple[str, ...] = ()

    def label(self, model: ModelReport) -> str:
        """How tables name ``model``: its name, qualified by its source when not unique."""
        for candidate, label in zip(self.models, self.labels):
            if candidate is model:
                return label
        return model.name

    def ratio(self, model: ModelReport, metric: str) -> float | None:
        """``model / baseline`` for ``metric`` (None when the baseline's value is 0)."""
        base = getattr(self.baseline.totals, metric)
        return getattr(model.totals, metric) / base if base else None

    def phrases(self, model: ModelReport) -> list[str]:
        """'3.76x fewer MACs', ... for each metric; empty for the baseline itself."""
        if model is self.baseline:
            return []
        return [ratio_phrase(getattr(model.totals, key), getattr(self.baseline.totals, key), noun)
                for key, noun in COMPARED_METRICS]

    def predicted_speedup(self, model: ModelReport) -> float | None:
        """Baseline MACs / model MACs: how much faster the count says ``model`` should be."""
        return self.baseline.totals.macs / model.totals.macs if model.totals.macs else None

    def measured_speedup(self, model: ModelReport) -> float | None:
        """Baseline time / model time (``--bench``), or None when either was not measured."""
        mine, base = bench_seconds(model), bench_seconds(self.baseline)
        return base / mine if mine and base else None

    def measured_reliable(self, model: ModelReport) -> bool:
        """Whether ``model``'s and the baseline's timings were both reliable (stable, steady
        probes, not contended); False when either was not measured."""
        return all(report.bench is not None and report.bench.reliable
                   for report in (model, self.baseline))

    def roofline_speedup(self, model: ModelReport) -> dict[str, float | None]:
        """Baseline time / model time per device id (``--device``); None when either
        predicted time is 0 (a model with no ops and no traffic has no meaningful ratio)."""
        base = {time.device: time.time_s for time in self.baseline.roofline}
        return {time.device: base[time.device] / time.time_s
                if time.time_s and base[time.device] else None
                for time in model.roofline if time.device in base}

    def to_json(self) -> dict[str, Any]:
        models = []
        for model in self.models:
            entry: dict[str, Any] = {
                "name": model.name,
                "ratios": {key: self.ratio(model, key) for key, _ in COMPARED_METRICS},
                "predicted_speedup": self.predicted_speedup(model),
            }
            if bench_seconds(model) is not None:
                entry["measured_speedup"] = self.measured_speedup(model)
                entry["measured_reliable"] = self.measured_reliable(model)
            if model.roofline:
                entry["roofline_speedup"] = self.roofline_speedup(model)
            models.append(entry)
        return {"baseline": self.baseline.name, "models": models}


def bench_seconds(model: ModelReport) -> float | None:
    """The measured median seconds of ``model``'s chain, if it was benchmarked."""
    return model.bench.median_s if model.bench is not None else None


class Located(Protocol):
    """Anything named in a source at a line: a model report, or a baseline's model."""

    @property
    def name(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def line(self) -> int: ...


def model_labels(models: Sequence[Located]) -> list[str]:
    """Each model's name, or ``SOURCE:NAME`` when another model has the same name (two files
    may both define ``net``), or ``SOURCE:LINE:NAME`` when even that is shared."""
    names = Counter(model.name for model in models)
    labels = [f"{model.source}:{model.name}" if names[model.name] > 1 else model.name
              for model in models]
    shared = Counter(labels)
    return [f"{model.source}:{model.line}:{model.name}" if shared[label] > 1 else label
            for model, label in zip(models, labels)]


def find_baseline(models: list[ModelReport], baseline: str | None = None) -> int:
    """Position of the model named ``baseline`` (default: the first), by its name or its
    label (``SOURCE:NAME``); raises :class:`~convcost.errors.UsageError` when there is none
    or when the name is ambiguous."""
    if not models:
        raise UsageError("there are no models to compare", "<args>")
    if baseline is None:
        return 0
    labels = model_labels(models)
    for position, label in enumerate(labels):
        if label == baseline:
            return position
    named = [position for position, model in enumerate(models) if model.name == baseline]
    if len(named) == 1:
        return named[0]
    if named:
        choices = ", ".join(repr(labels[position]) for position in named[:10])
        raise UsageError(f"--baseline '{baseline}' is ambiguous: {len(named)} models have that "
                         f"name; give one of {choices}", "--baseline")
    names = ", ".join(repr(label) for label in labels[:20])
    more = f" and {len(labels) - 20} more" if len(labels) > 20 else ""
    raise UsageError(f"--baseline '{baseline}' names no model; the models are {names}{more}",
                     "--baseline")


def compare(models: list[ModelReport], baseline: str | None = None) -> Comparison:
    """Compare ``models`` against the one named ``baseline`` (default: the first)."""
    return Comparison(models[find_baseline(models, baseline)], tuple(models),
                      tuple(model_labels(models)))
