"""Budgets and baselines for CI: does every model stay within its limits?

A *budget* is an absolute limit applied to every model (``--max-macs 4.2G``). A *baseline* is
an earlier ``convcost analyze --format json`` document; a model fails when a metric grew beyond
``baseline * (1 + tolerance)``. Models are matched to the baseline by source and name, or by
name alone when that is unambiguous.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from convcost.cost.report import BYTE_METRICS, METRIC_NAMES, METRICS, SCHEMA, ModelReport
from convcost.errors import BaselineError

__all__ = ["BYTE_METRICS", "METRICS", "METRIC_NAMES", "BaselineError", "Result", "Verdict",
           "load_baseline", "parse_tolerance", "run_check"]


class Result(NamedTuple):
    """One verdict: ``model``'s ``metric`` is ``now``, against a baseline value and/or limit."""

    model: str
    source: str
    line: int
    metric: str
    now: int
    baseline: int | None
    limit: int | None
    passed: bool
    reason: str

    @property
    def change(self) -> float | None:
        """Relative change against the baseline (0.05 = grew 5%)."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.now / self.baseline - 1

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "source": self.source, "metric": self.metric,
                "baseline": self.baseline, "now": self.now, "change": self.change,
                "limit": self.limit, "passed": self.passed, "reason": self.reason}


class Verdict(NamedTuple):
    """All results, and the models added to or removed from the baseline."""

    results: tuple[Result, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    baseline: str | None
    tolerance: float

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> list[Result]:
        return [result for result in self.results if not result.passed]

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "baseline": self.baseline, "tolerance": self.tolerance,
                "results": [result.to_json() for result in self.results],
                "added": list(self.added), "removed": list(self.removed)}


def load_baseline(path: str) -> list[dict[str, Any]]:
    """The models of a baseline document written by ``convcost analyze --format json``."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as error:
        raise BaselineError(f"cannot read baseline '{path}': {error.strerror or error}", path) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BaselineError(f"baseline '{path}' is not JSON: {error}", path) from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA or \
            not isinstance(document.get("models"), list):
        raise BaselineError(f"baseline '{path}' is not a {SCHEMA} document; write one with "
                            f"'convcost analyze SPECS --format json > {path}'", path)
    models = []
    for entry in document["models"]:
        totals = entry.get("totals") if isinstance(entry, dict) else None
        if not isinstance(totals, dict) or not isinstance(entry.get("name"), str):
            raise BaselineError(f"baseline '{path}' has a model without a name or totals", path)
        models.append(entry)
    return models


def parse_tolerance(text: str) -> float:
    """'1%' -> 0.01, '0.05' -> 0.05 (ValueError if negative or malformed)."""
    stripped = text.strip()
    value = float(stripped[:-1]) / 100 if stripped.endswith("%") else float(stripped)
    if value < 0:
        raise ValueError("the tolerance cannot be negative")
    return value


def run_check(models: list[ModelReport], budgets: dict[str, int],
              baseline: list[dict[str, Any]] | None = None, *, baseline_name: str | None = None,
              tolerance: float = 0.0) -> Verdict:
    """Check ``models`` against ``budgets`` (metric key -> limit) and ``baseline`` models."""
    results: list[Result] = []
    matched: set[int] = set()
    by_key = {(entry.get("source"), entry["name"]): number
              for number, entry in enumerate(baseline or [])}
    by_name: dict[str, list[int]] = {}
    for number, entry in enumerate(baseline or []):
        by_name.setdefault(entry["name"], []).append(number)
    added: list[str] = []
    for model in models:
        old = None
        if baseline is not None:
            found = by_key.get((model.source, model.name))
            if found is None and len(by_name.get(model.name, [])) == 1:
                found = by_name[model.name][0]
            if found is None:
                added.append(model.name)
            else:
                matched.add(found)
                old = baseline[found]["totals"]
        for key, name, _ in METRICS:
            now = getattr(model.totals, key)
            limit = budgets.get(key)
            before = old.get(key) if old is not None else None
            if limit is None and not isinstance(before, int):
                continue
            reasons = []
            if limit is not None and now > limit:
                reasons.append(f"{name} {now:,} over the budget of {limit:,}")
            if isinstance(before, int) and now > before * (1 + tolerance):
                grown = f"{(now / before - 1) * 100:.2f}%" if before else "from 0"
                reasons.append(f"{name} grew {grown} ({before:,} -> {now:,}), beyond the "
                               f"tolerance of {tolerance * 100:g}%")
            results.append(Result(model.name, model.source, model.line, key, now,
                                  before if isinstance(before, int) else None, limit,
                                  not reasons, "; ".join(reasons)))
    removed = [entry["name"] for number, entry in enumerate(baseline or [])
               if number not in matched]
    return Verdict(tuple(results), tuple(added), tuple(removed), baseline_name, tolerance)
