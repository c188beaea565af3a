"""Comparing models against a baseline: exact ratios and the sentences people read."""

from __future__ import annotations

from typing import Any, NamedTuple

from convcost.cost.report import COMPARED_METRICS, ModelReport
from convcost.errors import UsageError
from convcost.units import ratio_phrase


class Comparison(NamedTuple):
    """Models side by side against ``baseline`` (one of ``models``)."""

    baseline: ModelReport
    models: tuple[ModelReport, ...]

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


def find_baseline(models: list[ModelReport], baseline: str | None = None) -> int:
    """Position of the model named ``baseline`` (default: the first); raises
    :class:`~convcost.errors.UsageError` when there is none."""
    if not models:
        raise UsageError("there are no models to compare", "<args>")
    if baseline is None:
        return 0
    for position, model in enumerate(models):
        if model.name == baseline:
            return position
    names = ", ".join(repr(model.name) for model in models)
    raise UsageError(f"--baseline '{baseline}' names no model; the models are {names}",
                     "--baseline")


def compare(models: list[ModelReport], baseline: str | None = None) -> Comparison:
    """Compare ``models`` against the one named ``baseline`` (default: the first)."""
    return Comparison(models[find_baseline(models, baseline)], tuple(models))
