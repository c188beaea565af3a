"""Comparing models against a baseline: exact ratios and the sentences people read."""

from __future__ import annotations

from typing import Any, NamedTuple

from convcost.report import ModelReport
from convcost.units import ratio_phrase

#: Metrics compared, as (JSON key, noun in sentences).
METRICS: tuple[tuple[str, str], ...] = (
    ("macs", "MACs"), ("params", "params"), ("peak_activation_bytes", "peak memory"),
)


class UnknownBaseline(LookupError):
    """``--baseline NAME`` names no analysed model."""


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
                for key, noun in METRICS]

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline.name,
            "models": [{"name": model.name,
                        "ratios": {key: self.ratio(model, key) for key, _ in METRICS}}
                       for model in self.models],
        }


def compare(models: list[ModelReport], baseline: str | None = None) -> Comparison:
    """Compare ``models`` against the one named ``baseline`` (default: the first)."""
    if not models:
        raise UnknownBaseline("there are no models to compare")
    chosen = models[0]
    if baseline is not None:
        matches = [model for model in models if model.name == baseline]
        if not matches:
            names = ", ".join(repr(model.name) for model in models)
            raise UnknownBaseline(f"--baseline '{baseline}' names no model; the models are "
                                  f"{names}")
        chosen = matches[0]
    return Comparison(chosen, tuple(models))
