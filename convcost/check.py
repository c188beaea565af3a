"""Budgets and baselines for CI: does every model stay within its limits?

A *budget* is an absolute limit applied to every model (``--max-macs 4.2G``). A *baseline* is
an earlier ``convcost analyze --format json`` document; a model fails when a metric grew beyond
``baseline * (1 + tolerance)``. Models are matched to the baseline by source and name, or by
name alone when that is unambiguous, or as a rename (same file and line). A *time budget*
limits a model's roofline time on a device (``--max-time t4=5ms``); its metric key is ``time@<device id>``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any, NamedTuple

from convcost.baseline import Baseline, BaselineModel, load_baseline, parse_models, source_key
from convcost.compare import model_labels
from convcost.cost.report import BYTE_METRICS, METRIC_NAMES, METRICS, ModelReport
from convcost.errors import BaselineError

__all__ = ["BYTE_METRICS", "METRICS", "METRIC_NAMES", "TIME_METRIC_PREFIX", "Baseline",
           "BaselineError", "Rename", "Result", "Verdict", "load_baseline", "metric_kind", "metric_name",
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
        """Relative change against the baseline (0.05 = grew 5%); None without a baseline
        value, from 0, or beyond what a float holds."""
        if self.baseline is None or self.baseline == 0:
            return None
        try:
            return self.now / self.baseline - 1
        except OverflowError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "source": self.source, "metric": self.metric,
                "baseline": self.baseline, "now": self.now, "change": self.change,
                "limit": self.limit, "passed": self.passed, "reason": self.reason}


class Rename(NamedTuple):
    """A baseline model that now has another name (same source file and line)."""

    old: str
    new: str
    source: str
    line: int


class Verdict(NamedTuple):
    """All results, the models added to or removed from the baseline, those renamed, and how
    many inputs failed to analyse (``errors``: any of them makes the verdict ERROR)."""

    results: tuple[Result, ...]
    added: tuple[str, ...]
    removed: tuple[str, ...]
    baseline: str | None
    tolerance: Fraction
    renamed: tuple[Rename, ...] = ()
    errors: int = 0

    @property
    def passed(self) -> bool:
        """Whether every check passed and every input was analysed (exit code 0)."""
        return self.errors == 0 and all(result.passed for result in self.results)

    @property
    def status(self) -> str:
        """'PASS', 'FAIL' (a check failed: exit 1) or 'ERROR' (an input failed: exit 2)."""
        return "ERROR" if self.errors else "PASS" if self.passed else "FAIL"

    @property
    def failures(self) -> list[Result]:
        return [result for result in self.results if not result.passed]

    def with_errors(self, errors: int) -> Verdict:
        """This verdict counting ``errors`` inputs that could not be analysed."""
        return self._replace(errors=errors)

    def to_json(self) -> dict[str, Any]:
        return {"passed": self.passed, "status": self.status, "errors": self.errors,
                "baseline": self.baseline, "tolerance": float(self.tolerance),
                "results": [result.to_json() for result in self.results],
                "added": list(self.added), "removed": list(self.removed),
                "renamed": [{"from": rename.old, "to": rename.new, "source": rename.source,
                             "line": rename.line} for rename in self.renamed]}


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
        if not number.isascii():  # float() takes '٣'; every other number refuses it
            raise ValueError
        seconds = float(number) * scale
    except ValueError:
        raise ValueError(f"'{amount}' in '{text}' is not a number of seconds") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"the time in '{text}' must be a finite number of seconds above 0")
    return device.strip(), seconds


#: A tolerance as written: a percentage ('1%', '2.5 %') or a fraction below 1 ('0.01').
_TOLERANCE = re.compile(r"(?P<number>\d{1,9}(?:\.\d{0,9})?|\.\d{1,9})\s*(?P<percent>%?)", re.ASCII)


def parse_tolerance(text: str) -> Fraction:
    """The growth a tolerance allows, exactly: '1%' -> 1/100, '0.05' -> 1/20.

    A percentage ``N%`` (up to 9 digits either side of the point) or a bare fraction below 1.
    A bare ``1`` or more is refused: it would silently mean 100% or more, and ``15`` is
    almost always meant as 15%. ValueError for anything else (negative, NaN, infinite,
    exponents)."""
    match = _TOLERANCE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"'{text[:40]}' is not a tolerance like 1%, 2.5% or 0.01")
    value = Fraction(match["number"])
    if match["percent"]:
        return value / 100
    if value >= 1:
        raise ValueError(f"a bare tolerance is a fraction below 1 ('{text.strip()}' would "
                         f"allow {value * 100}% growth); write '{match['number']}%' for "
                         f"{match['number']} percent")
    return value


def _percent(tolerance: Fraction) -> str:
    """'1%', '2.5%' (for sentences)."""
    return f"{float(tolerance * 100):g}%"


def run_check(models: list[ModelReport], budgets: dict[str, int],
              baseline: Baseline | Sequence[Mapping[str, Any]] | None = None, *,
              baseline_name: str | None = None, tolerance: Fraction | float = 0,
              time_budgets: Mapping[str, float] | None = None) -> Verdict:
    """Check ``models`` against ``budgets`` (metric key -> limit), ``baseline`` models and
    ``time_budgets`` (device id -> seconds; the models must carry roofline times for those
    devices, see :func:`convcost.roofline.with_roofline`, else ValueError).

    Models match baseline models by source and name, then by a name unique in the baseline;
    a model left over whose file and line held a left-over baseline model is a rename, and
    is checked against it. A ``baseline`` given as JSON objects is validated first
    (:class:`BaselineError`)."""
    allowed = Fraction(tolerance)
    if allowed < 0:
        raise ValueError("the tolerance cannot be negative")
    old_models: tuple[BaselineModel, ...] | None = None
    if isinstance(baseline, Baseline):
        old_models = baseline.models
        baseline_name = baseline_name or baseline.path
    elif baseline is not None:
        old_models = parse_models(list(baseline), baseline_name or "<baseline>")
    found = _match(models, old_models) if old_models is not None else {}
    renamed = [Rename(old_models[number].name, models[position].name, models[position].source,
                      models[position].line)
               for position, number in found.items()
               if old_models is not None and old_models[number].name != models[position].name]
    results: list[Result] = []
    for position, model in enumerate(models):
        number = found.get(position)
        old = old_models[number].totals if old_models is not None and number is not None \
            else None
        for key, name, _ in METRICS:
            results.extend(_metric_result(model, key, name, budgets.get(key),
                                          old.get(key) if old is not None else None, allowed))
        results.extend(_time_results(model, time_budgets or {}))
    matched = set(found.values())
    # Named as compare names them: qualified by source when two models share a name.
    labels, old_labels = model_labels(models), model_labels(old_models or ())
    added = [labels[position] for position in range(len(models))
             if old_models is not None and position not in found]
    removed = [old_labels[number] for number in range(len(old_labels)) if number not in matched]
    return Verdict(tuple(results), tuple(added), tuple(removed), baseline_name, allowed,
                   tuple(renamed))


def _match(models: list[ModelReport], old: Sequence[BaselineModel]) -> dict[int, int]:
    """Position of each model -> number of the baseline model it is checked against."""
    by_key = {(entry.source, entry.name): number for number, entry in enumerate(old)}
    by_name: dict[str, list[int]] = {}
    for number, entry in enumerate(old):
        by_name.setdefault(entry.name, []).append(number)
    found: dict[int, int] = {}
    taken: set[int] = set()
    for position, model in enumerate(models):
        hit = by_key.get((source_key(model.source), model.name))
        if hit is None and len(by_name.get(model.name, [])) == 1:
            hit = by_name[model.name][0]
        if hit is not None and hit not in taken:  # one model per baseline model
            found[position] = hit
            taken.add(hit)
    # Renames: a left-over model and a left-over baseline model alone at one file's line.
    # Chains typed on the command line ('<arg>', line 1) have no place to share.
    left: dict[tuple[str, int], list[int]] = {}
    for number, entry in enumerate(old):
        if number not in taken and not entry.source.startswith("<"):
            left.setdefault((entry.source, entry.line), []).append(number)
    fresh: dict[tuple[str, int], list[int]] = {}
    for position, model in enumerate(models):
        if position not in found and not model.source.startswith("<"):
            fresh.setdefault((source_key(model.source), model.line), []).append(position)
    for place, positions in fresh.items():
        numbers = left.get(place, [])
        if len(positions) == 1 and len(numbers) == 1:
            found[positions[0]] = numbers[0]
            del left[place]
    # A baseline made in another working directory names the same file by another relative
    # path ('specs/a.convcost' against 'a.convcost'): a left-over pair at one line whose paths
    # end in the same components is that file, unless the pairing is ambiguous. Indexed by
    # file name and line, so that thousands of left-overs never meet each other pairwise.
    by_place: dict[tuple[str, int], list[tuple[str, int]]] = {}
    for (old_source, old_line), numbers in left.items():
        if len(numbers) == 1:
            by_place.setdefault((_base(old_source), old_line), []).append(
                (old_source, numbers[0]))
    pairs: dict[int, list[int]] = {}
    paired: dict[int, list[int]] = {}
    for (source, line), positions in fresh.items():
        if len(positions) != 1 or positions[0] in found:
            continue
        for old_source, number in by_place.get((_base(source), line), []):
            if _same_tail(source, old_source):
                pairs.setdefault(positions[0], []).append(number)
                paired.setdefault(number, []).append(positions[0])
    for position, numbers in pairs.items():
        if len(numbers) == 1 and len(paired[numbers[0]]) == 1:
            found[position] = numbers[0]
    _pair_moved(models, old, found)
    return dict(sorted(found.items()))


def _pair_moved(models: list[ModelReport], old: Sequence[BaselineModel],
                found: dict[int, int]) -> None:
    """Pair the unnamed models left over in one file with that file's left-over unnamed
    baseline models, in line order, when there are as many of each: a line added above an
    unnamed model renames it ('x.convcost:1' -> 'x.convcost:2'), and its regression read as
    an added and a removed model, and passed. Such pairs are flagged as renames. (Named
    models have a name to match by; they pair only at the same line.)"""
    taken = set(found.values())
    old_left: dict[str, list[int]] = {}
    for number, entry in enumerate(old):
        if number not in taken and not entry.source.startswith("<") and \
                entry.name == f"{entry.source}:{entry.line}":
            old_left.setdefault(entry.source, []).append(number)
    new_left: dict[str, list[int]] = {}
    for position, model in enumerate(models):
        key = source_key(model.source)
        if position not in found and not model.source.startswith("<") and \
                model.name in (f"{model.source}:{model.line}", f"{key}:{model.line}"):
            new_left.setdefault(key, []).append(position)
    by_base: dict[str, list[str]] = {}
    for old_source in old_left:
        by_base.setdefault(_base(old_source), []).append(old_source)
    claimed: set[str] = set()
    for source, positions in new_left.items():
        files = [old_source for old_source in by_base.get(_base(source), [])
                 if old_source == source or _same_tail(source, old_source)]
        if len(files) != 1 or files[0] in claimed or len(old_left[files[0]]) != len(positions):
            continue
        claimed.add(files[0])
        numbers = sorted(old_left[files[0]], key=lambda number: old[number].line)
        for position, number in zip(sorted(positions, key=lambda at: models[at].line),
                                    numbers):
            found[position] = number


def _base(source: str) -> str:
    """The file name at the end of ``source``."""
    return source.replace("\\", "/").rstrip("/").rpartition("/")[2]


def _same_tail(source: str, other: str) -> bool:
    """Whether one path's components end the other's (``a/specs/x.convcost``, ``specs/x.convcost``)."""
    mine = [part for part in source.replace("\\", "/").split("/") if part not in ("", ".")]
    theirs = [part for part in other.replace("\\", "/").split("/") if part not in ("", ".")]
    if not mine or not theirs or ".." in mine or ".." in theirs:
        return False
    shorter, longer = sorted((mine, theirs), key=len)
    return longer[len(longer) - len(shorter):] == shorter


def _metric_result(model: ModelReport, key: str, name: str, limit: int | None,
                   before: int | None, tolerance: Fraction) -> list[Result]:
    """The result of one metric of ``model`` (none when it has no limit and no baseline)."""
    if limit is None and before is None:
        return []
    now: int = getattr(model.totals, key)
    reasons = []
    if limit is not None and now > limit:
        reasons.append(f"{name} {now:,} over the budget of {limit:,}")
    # Exact: now > before * (1 + tolerance), in integers.
    if before is not None and now * tolerance.denominator > \
            before * (tolerance.denominator + tolerance.numerator):
        grown = f"{_growth_percent(now, before)}" if before else "from 0"
        reasons.append(f"{name} grew {grown} ({before:,} -> {now:,}), beyond the tolerance "
                       f"of {_percent(tolerance)}")
    return [Result(model.name, model.source, model.line, key, now, before, limit, not reasons,
                   "; ".join(reasons))]


def _growth_percent(now: int, before: int) -> str:
    """'5.00%': the growth of ``now`` over ``before`` (> 0), rounded exactly in integers."""
    hundredths = (now - before) * 10_000 // before
    return f"{hundredths // 100:,}.{hundredths % 100:02d}%"


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
