"""Budgets and baselines for CI: does every model stay within its limits?

A *budget* is an absolute limit applied to every model (``--max-macs 4.2G``). A *baseline* is
an earlier ``convcost analyze --format json`` document; a model fails when a metric grew beyond
``baseline * (1 + tolerance)``. Models are matched to the baseline by source and name, or by
name alone when that is unambiguous. A *time budget* limits a model's roofline time on a
device (``--max-time t4=5ms``); its metric key is ``time@<device id>``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

from convcost.cost.report import (
    BYTE_METRICS,
    METRIC_NAMES,
    METRICS,
    SCHEMA,
    ModelReport,
)
from convcost.errors import BaselineError, ReadError

__all__ = ["BYTE_METRICS", "METRICS", "METRIC_NAMES", "TIME_METRIC_PREFIX", "BaselineError",
           "Result", "Verdict", "load_baseline", "metric_kind", "metric_name",
           "parse_time_budget", "parse_tolerance", "run_check", "time_metric"]

#: Metric keys of time budgets: ``time@t4``.
TIME_METRIC_PREFIX = "time@"


class Result(NamedTuple):
    """One verdict: ``model``'s ``metric`` is ``now``, against a baseline value and/or limit."""

    model: str
    source: str
    line: int
    metric: str
    #: Exact integers for counts and bytes; seconds (float) for ``time@`` metrics.
    now: int | float
    baseline: int | None
    limit: int | float | None
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


def time_metric(device: str) -> str:
    """The metric key of a time budget on the device with id ``device``."""
    return TIME_METRIC_PREFIX + device


def metric_name(metric: str) -> str:
    """The noun of a metric key in tables: 'MACs', 'time on t4'."""
    if metric.startswith(TIME_METRIC_PREFIX):
        return "time on " + metric[len(TIME_METRIC_PREFIX):]
    return METRIC_NAMES[metric]


def metric_kind(metric: str) -> str:
    """How a metric's values read: 'count', 'bytes' or 'seconds'."""
    if metric.startswith(TIME_METRIC_PREFIX):
        return "seconds"
    return "bytes" if metric in BYTE_METRICS else "count"


def parse_time_budget(text: str) -> tuple[str, float]:
    """'t4=0.005' -> ('t4', 0.005); also '5ms', '250us', '2s' (ValueError if malformed,
    not finite or not positive). The device part is returned as written."""
    device, sep, amount = text.rpartition("=")
    if not sep or not device.strip() or not amount.strip():
        raise ValueError(f"'{text}' is not DEVICE=SECONDS (e.g. t4=0.005 or t4=5ms)")
    number = amount.strip().lower()
    scale = 1.0
    for suffix, factor in (("ms", 1e-3), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("s", 1.0)):
        if number.endswith(suffix):
            number, scale = number[: -len(suffix)].strip(), factor
            break
    try:
        seconds = float(number) * scale
    except ValueError:
        raise ValueError(f"'{amount}' in '{text}' is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"the time in '{text}' must be a finite number of seconds above 0")
    return device.strip(), seconds


def load_baseline(path: str) -> list[dict[str, Any]]:
    """The models of a baseline document written by ``convcost analyze --format json``."""
    from convcost.inputs import MAX_FILE_BYTES, read_bounded

    try:
        data = read_bounded(path)  # a FIFO or /dev/zero must neither block nor fill memory
        if len(data) > MAX_FILE_BYTES:
            raise BaselineError(f"baseline '{path}' is larger than "
                                f"{MAX_FILE_BYTES // 2**20} MiB", path)
        document = json.loads(data.decode("utf-8"))
    except ReadError as error:
        raise BaselineError(f"cannot read baseline: {error.message}", path) from None
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
              tolerance: float = 0.0,
              time_budgets: Mapping[str, float] | None = None) -> Verdict:
    """Check ``models`` against ``budgets`` (metric key -> limit), ``baseline`` models and
    ``time_budgets`` (device id -> seconds; the models must carry roofline times for those
    devices, see :func:`convcost.roofline.with_roofline`, else ValueError)."""
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
        results.extend(_time_results(model, time_budgets or {}))
    removed = [entry["name"] for number, entry in enumerate(baseline or [])
               if number not in matched]
    return Verdict(tuple(results), tuple(added), tuple(removed), baseline_name, tolerance)


def _time_results(model: ModelReport, budgets: Mapping[str, float]) -> list[Result]:
    """One result per time budget: the model's predicted time on that device."""
    from convcost.units import seconds

    predicted = {time.device: time for time in model.roofline}
    results = []
    for device, limit in budgets.items():
        time = predicted.get(device)
        if time is None:
            raise ValueError(f"model '{model.name}' has no predicted time on '{device}'; "
                             f"analyse it with that device first")
        passed = time.time_s <= limit
        reason = "" if passed else (f"predicted time on {time.name} {seconds(time.time_s)} "
                                    f"over the budget of {seconds(limit)}")
        results.append(Result(model.name, model.source, model.line, time_metric(device),
                              time.time_s, None, limit, passed, reason))
    return results
