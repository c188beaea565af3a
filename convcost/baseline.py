"""Baselines for ``convcost check``: an earlier ``convcost analyze --format json`` document,
read with a size cap and validated field by field before anything is compared.

Only the fields ``check`` reads are validated (names, sources, lines, batch, dtype, the
configuration and the totals of :data:`~convcost.cost.report.METRICS`); they must be what
the ``convcost/1`` schema says: exact non-negative integers below 2**63, strings, known dtypes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from convcost.analysis import Options
from convcost.cost.report import DTYPE_BYTES, METRICS, SCHEMA
from convcost.errors import BaselineError
from convcost.inputs import NotAFile, bom_encoding, open_file
from convcost.inputs import source_path as source_key

__all__ = ["MAX_BASELINE_BYTES", "MAX_COUNT", "Baseline", "BaselineError", "BaselineModel",
           "load_baseline", "parse_models", "source_key"]

#: Largest baseline read, in bytes (with its layers, a ResNet-50 takes about 45 KB; the
#: whole zoo of 19 networks under 1 MB).
MAX_BASELINE_BYTES = 64 * 1024 * 1024
#: Counts and byte totals above this are not something convcost wrote (it is int64's limit).
MAX_COUNT = 2**63 - 1
#: Largest batch or size a configuration can name.
_MAX_DIMENSION = 2**31 - 1


class BaselineModel(NamedTuple):
    """One model of a baseline: where it came from and its exact totals by metric key."""

    name: str
    source: str
    line: int
    batch: int
    dtype: str
    totals: Mapping[str, int]


class Baseline(NamedTuple):
    """A validated baseline document; ``configuration`` is None when an older document did
    not record it and its models disagree on batch or dtype."""

    path: str
    models: tuple[BaselineModel, ...]
    configuration: Options | None
    #: Whether the document recorded the configuration (then ``size`` is known too).
    recorded: bool

    def mismatch(self, now: Options) -> str | None:
        """A sentence naming both configurations when they differ, else None."""
        if self.configuration is None:
            return (f"baseline '{self.path}' mixes batches or dtypes; write it again with one "
                    f"configuration ({now.describe()})")
        before = self.configuration
        if self.recorded:
            same = before == now
        else:  # an older document: its size was not recorded, batch and dtype were
            same = (before.batch, before.dtype) == (now.batch, now.dtype)
            before = before._replace(size=now.size)
        if same:
            return None
        return (f"baseline '{self.path}' was made with {before.describe()}, but this check runs "
                f"with {now.describe()}; give the same --batch, --dtype and --size, or write "
                f"the baseline again")


def load_baseline(path: str) -> Baseline:
    """The validated baseline at ``path``; :class:`BaselineError` (exit 2) when it cannot be
    read, is not a ``convcost/1`` document, or holds a value convcost would never write."""
    data = _read(path)
    if not data.strip():  # also a FIFO that nobody writes to
        raise BaselineError(f"baseline '{path}' is not JSON: it is empty", path)
    # A baseline written by Windows PowerShell's '>' is UTF-16 with a BOM; 'Out-File -Encoding
    # utf8' adds a UTF-8 BOM. Both are the same document.
    encoding = bom_encoding(data) or "utf-8"
    try:
        document = json.loads(data.decode(encoding).removeprefix("\ufeff"))
    except UnicodeDecodeError as error:
        raise BaselineError(f"baseline '{path}' is not {encoding.upper().removesuffix('-SIG')} "
                            f"text: {error.reason} at byte {error.start}", path) from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"baseline '{path}' is not JSON: {error}", path) from None
    except RecursionError:
        raise BaselineError(f"baseline '{path}' is nested too deeply to be a {SCHEMA} "
                            f"document", path) from None
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        reason = "it holds a number of thousands of digits" if "digits" in str(error) \
            else str(error)
        raise BaselineError(f"baseline '{path}' is not usable JSON: {reason}", path) from None
    if not isinstance(document, dict) or document.get("schema") != SCHEMA or \
            not isinstance(document.get("models"), list):
        raise BaselineError(f"baseline '{path}' is not a {SCHEMA} document; write one with "
                            f"'convcost analyze SPECS --format json > {path}'", path)
    models = parse_models(document["models"], path)
    recorded = "configuration" in document
    if recorded:
        configuration: Options | None = _configuration(document["configuration"], path)
        for model in models:  # an edited or merged document must not mix configurations
            if configuration is not None and \
                    (model.batch, model.dtype) != (configuration.batch, configuration.dtype):
                raise BaselineError(
                    f"baseline '{path}', model '{_short(model.name)}' was made with batch "
                    f"{model.batch}, {model.dtype}, but the document's configuration says "
                    f"batch {configuration.batch}, {configuration.dtype}", path)
    else:
        kinds = {(model.batch, model.dtype) for model in models}
        configuration = Options(None, *kinds.pop()) if len(kinds) == 1 else \
            None if kinds else Options()
    return Baseline(path, models, configuration, recorded)


def parse_models(entries: Sequence[Any], path: str) -> tuple[BaselineModel, ...]:
    """Validate the ``models`` array of a baseline (also for documents built in memory)."""
    models = []
    for number, entry in enumerate(entries, 1):
        where = f"baseline '{path}', model {number}"
        if not isinstance(entry, dict):
            raise BaselineError(f"{where} is not an object", path)
        name, source = entry.get("name"), entry.get("source", "")
        if not isinstance(name, str) or not isinstance(entry.get("totals"), dict):
            raise BaselineError(f"{where} has no name or no totals", path)
        where = f"baseline '{path}', model '{_short(name)}'"
        if not isinstance(source, str):
            raise BaselineError(f"{where}: 'source' must be a string, not "
                                f"{_json_type(source)}", path)
        line = _integer(entry.get("line", 0), f"{where}: 'line'", path, 0, _MAX_DIMENSION)
        batch = _integer(entry.get("batch", 1), f"{where}: 'batch'", path, 1, _MAX_DIMENSION)
        dtype = _dtype(entry.get("dtype", "float32"), f"{where}: 'dtype'", path)
        totals = {key: _integer(entry["totals"][key], f"{where}: totals '{key}'", path, 0,
                                MAX_COUNT)
                  for key, _, _ in METRICS if key in entry["totals"]}
        missing = [key for key, _, _ in METRICS if key not in totals]
        if missing:
            raise BaselineError(f"{where}: totals lack {', '.join(missing)}", path)
        key = source_key(source)
        if name == f"{source}:{line}":  # an unnamed model is named after its path as typed
            name = f"{key}:{line}"
        models.append(BaselineModel(name, key, line, batch, dtype, totals))
    return tuple(models)


def _read(path: str) -> bytes:
    """The bytes of ``path``, at most :data:`MAX_BASELINE_BYTES`; directories, devices and
    sockets are refused and a FIFO never blocks (:func:`~convcost.inputs.open_file`: with no
    writer it reads as empty)."""
    try:
        with open_file(path) as handle:
            data = handle.read(MAX_BASELINE_BYTES + 1)
    except NotAFile as refused:
        raise BaselineError(f"baseline '{path}' is {refused.what}, not a JSON file",
                            path) from None
    except OSError as error:
        raise BaselineError(f"cannot read baseline '{path}': {error.strerror or error}",
                            path) from None
    if len(data) > MAX_BASELINE_BYTES:
        raise BaselineError(f"baseline '{path}' is larger than "
                            f"{MAX_BASELINE_BYTES // (1024 * 1024)} MiB", path)
    return data


def _configuration(value: Any, path: str) -> Options:
    where = f"baseline '{path}': 'configuration'"
    if not isinstance(value, dict):
        raise BaselineError(f"{where} must be an object, not {_json_type(value)}", path)
    batch = _integer(value.get("batch"), f"{where} 'batch'", path, 1, _MAX_DIMENSION)
    dtype = _dtype(value.get("dtype"), f"{where} 'dtype'", path)
    size = value.get("size")
    if size is None:
        return Options(None, batch, dtype)
    if not isinstance(size, list) or len(size) != 2:
        raise BaselineError(f"{where} 'size' must be [H, W] or null", path)
    height, width = (_integer(part, f"{where} 'size'", path, 1, _MAX_DIMENSION)
                     for part in size)
    return Options((height, width), batch, dtype)


def _integer(value: Any, where: str, path: str, low: int, high: int) -> int:
    """``value`` when it is an exact integer in [low, high] (booleans are not integers)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise BaselineError(f"{where} must be an integer, not {_json_type(value)}", path)
    if not low <= value <= high:
        raise BaselineError(f"{where} is {_short(str(value))}, outside {low}..{high:,}", path)
    return value


def _dtype(value: Any, where: str, path: str) -> str:
    if not isinstance(value, str) or value not in DTYPE_BYTES:
        raise BaselineError(f"{where} must be one of {', '.join(DTYPE_BYTES)}", path)
    return value


def _json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages ('a list', 'a number')."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return f"the number {_short(repr(value))}"
    names = {str: "a string", list: "a list", dict: "an object", int: "an integer"}
    return names.get(type(value), type(value).__name__)


def _short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters: messages stay bounded whatever the input."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
