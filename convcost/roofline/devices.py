"""Device profiles for roofline predictions: peak FLOP/s per dtype, memory bandwidth, capacity.

Profiles come from the shipped ``devices.toml`` (vendor datasheet figures, dense peaks), from a
user's own TOML file, or from the saved profile of this machine (``local``). A user file has
the same keys as a shipped profile, at top level::

    name = "My workstation"
    kind = "cpu"                      # optional, default "custom"
    bandwidth = 38.4e9                # bytes/s, DRAM
    memory_bytes = 34_359_738_368     # optional
    source = "measured by ..."        # optional, default: the file's path

    [peak]                            # FLOP/s per dtype (int8 in OP/s)
    float32 = 1.2e12
    float64 = 0.6e12
"""

from __future__ import annotations

import difflib
import errno
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

from convcost.cost.report import DTYPE_BYTES
from convcost.errors import InputError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: dtypes a profile may give a peak for, in display order: the names of ``--dtype``.
DTYPES: tuple[str, ...] = tuple(DTYPE_BYTES)

#: Device files larger than this (bytes) are refused: a profile is a few hundred bytes, so a
#: big file is a wrong path, and refusing avoids reading e.g. a dataset into memory.
MAX_DEVICE_FILE_BYTES = 1 << 20

#: The id that means "this machine's saved profile".
LOCAL_ID = "local"
#: Environment variable naming the local profile file (overrides the default path).
LOCAL_PROFILE_ENV = "CONVCOST_LOCAL_PROFILE"
#: Where the local profile lives when the environment variable is unset (``~`` expanded).
DEFAULT_LOCAL_PROFILE = "~/.config/convcost/local.toml"

_SHIPPED_FILE = "devices.toml"
_SHIPPED_NAME = "convcost/roofline/devices.toml"
_REQUIRED_KEYS = ("name", "bandwidth", "peak")
_OPTIONAL_KEYS = ("kind", "memory_bytes", "source")
_USER_KIND = "custom"
_KEY_MEANINGS = {"name": "a display name", "bandwidth": "memory bandwidth in bytes/s",
                 "peak": "a [peak] table of dtype = FLOP/s"}
# Common spellings of the dtypes, only to suggest the right name in an error.
_DTYPE_ALIASES = {"fp32": "float32", "f32": "float32", "fp16": "float16", "f16": "float16",
                  "half": "float16", "bf16": "bfloat16", "fp64": "float64", "f64": "float64",
                  "double": "float64", "float": "float32", "i8": "int8"}


class DeviceError(InputError, ValueError):
    """A device profile that cannot be found, read or validated, or a dtype it lacks.

    ``message`` is the full text for a user (no traceback needed).
    """

    kind = "device"

    def __init__(self, message: str, source: str = "--device") -> None:
        super().__init__(message, source)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Device:
    """One device's roofs: ``peak`` FLOP/s per dtype (int8 in OP/s), ``bandwidth`` bytes/s
    (DRAM/HBM), ``memory_bytes`` capacity in bytes (None when not fixed by the device)."""

    id: str
    name: str
    kind: str
    # Excluded from the hash (a mapping is unhashable); still part of equality.
    peak: Mapping[str, float] = field(hash=False)
    bandwidth: float
    memory_bytes: int | None
    source: str

    def __post_init__(self) -> None:
        _check_text("id", self.id)
        _check_text("name", self.name)
        _check_text("kind", self.kind)
        if not isinstance(self.source, str):
            raise DeviceError(f"source must be a string, got {_show(self.source)}")
        if not isinstance(self.peak, Mapping):
            raise DeviceError(
                f"peak must be a mapping of dtype to FLOP/s, got {_show(self.peak)}")
        if not self.peak:
            raise DeviceError("peak is empty; give at least one dtype, e.g. float32 = 1.0e12")
        peaks: dict[str, float] = {}
        for dtype, value in self.peak.items():
            if dtype not in DTYPES:
                raise DeviceError(f"unknown dtype {_show(dtype)} in peak{_dtype_hint(str(dtype))}"
                                  f" (known: {', '.join(DTYPES)})")
            peaks[dtype] = _positive_finite(f"peak.{dtype}", value, "FLOP/s")
        # Canonical order and a read-only view: the profile is a value, callers must not edit it.
        ordered = {dtype: peaks[dtype] for dtype in DTYPES if dtype in peaks}
        object.__setattr__(self, "peak", MappingProxyType(ordered))
        bandwidth = _positive_finite("bandwidth", self.bandwidth, "bytes/s")
        object.__setattr__(self, "bandwidth", bandwidth)
        memory = self.memory_bytes
        if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int)
                                   or memory <= 0):
            raise DeviceError(
                f"memory_bytes must be a positive whole number of bytes, got {_show(memory)}")

    def peak_for(self, dtype: str) -> float:
        """Peak FLOP/s (OP/s for int8) for ``dtype``; DeviceError naming the dtypes it has."""
        try:
            return self.peak[dtype]
        except KeyError:
            raise DeviceError(
                f"device '{self.id}' ({self.name}) has no {dtype} peak; "
                f"its dtypes: {', '.join(self.peak)}"
            ) from None


def _show(value: object) -> str:
    """A value as the user wrote it in TOML, for messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return str(value)


def _check_text(key: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise DeviceError(f"{key} must be a non-empty string, got {_show(value)}")


def _positive_finite(key: str, value: object, unit: str) -> float:
    # bool is an int subclass in Python; `bandwidth = true` is a mistake, not 1 byte/s.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DeviceError(f"{key} must be a positive finite number ({unit}), got {_show(value)}")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        number = math.inf
    if not math.isfinite(number) or number <= 0:
        raise DeviceError(f"{key} must be a positive finite number ({unit}), got {_show(value)}")
    return number


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    """'; did you mean 'x'?' (or '... 'x' or 'y'?') for close matches, else ''."""
    lowered = word.lower()
    prefixed = [c for c in choices if c.startswith(lowered) and lowered]
    close = difflib.get_close_matches(lowered, list(choices), n=3, cutoff=0.6)
    matches = list(dict.fromkeys(prefixed + close))[:3]
    if not matches:
        return ""
    return "; did you mean " + " or ".join(f"'{m}'" for m in matches) + "?"


def _dtype_hint(word: str) -> str:
    alias = _DTYPE_ALIASES.get(word.lower())
    return f"; did you mean '{alias}'?" if alias else _did_you_mean(word, DTYPES)


def _device_from_table(device_id: str, table: Mapping[str, Any], where: str,
                       default_kind: str, default_source: str) -> Device:
    """Build a Device from a parsed TOML table; every problem is a DeviceError naming ``where``."""
    allowed = _REQUIRED_KEYS + _OPTIONAL_KEYS
    for key in table:
        if key not in allowed:
            raise DeviceError(f"{where}: unknown key '{key}'{_did_you_mean(key, allowed)}"
                              f" (allowed: {', '.join(allowed)})")
    for key in _REQUIRED_KEYS:
        if key not in table:
            raise DeviceError(f"{where}: missing required key '{key}' ({_KEY_MEANINGS[key]})")
    peak = table["peak"]
    if not isinstance(peak, dict):
        raise DeviceError(f"{where}: peak must be a table of dtype = FLOP/s, like "
                          f"[peak] float32 = 1.0e12; got {_show(peak)}")
    memory = table.get("memory_bytes")
    # TOML writers (and people) often put 8e9 for a byte count: accept whole-valued floats.
    if isinstance(memory, float) and memory.is_integer():
        memory = int(memory)
    try:
        return Device(
            id=device_id,
            name=table["name"],
            kind=table.get("kind", default_kind),
            peak=peak,
            bandwidth=table["bandwidth"],
            memory_bytes=memory,
            source=table.get("source", default_source),
        )
    except DeviceError as error:
        raise DeviceError(f"{where}: {error.message}") from None


def _parse_toml(text: str, where: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # The parser's message ends with "(at line L, column C)": keep it verbatim.
        raise DeviceError(f"{where}: invalid TOML: {error}") from None


@lru_cache(maxsize=1)
def shipped_devices() -> tuple[Device, ...]:
    """The profiles shipped with convcost (``convcost/roofline/devices.toml``), in file order."""
    text = resources.files(__package__ or "convcost.roofline").joinpath(_SHIPPED_FILE).read_text(
        encoding="utf-8")
    document = _parse_toml(text, _SHIPPED_NAME)
    tables = document.get("devices")
    if not isinstance(tables, dict) or set(document) != {"devices"}:
        raise DeviceError(f"{_SHIPPED_NAME}: expected only [devices.<id>] tables")
    devices = []
    for device_id, table in tables.items():
        where = f"{_SHIPPED_NAME} [devices.{device_id}]"
        if device_id != device_id.lower() or device_id == LOCAL_ID:
            raise DeviceError(f"{where}: ids must be lowercase and not '{LOCAL_ID}'")
        if not isinstance(table, dict):
            raise DeviceError(f"{where}: must be a table")
        devices.append(_device_from_table(device_id, table, where, _USER_KIND, ""))
    return tuple(devices)


def shipped_ids() -> tuple[str, ...]:
    """Ids of the shipped profiles, in file order."""
    return tuple(device.id for device in shipped_devices())


def load_device_file(path: str | os.PathLike[str], device_id: str | None = None) -> Device:
    """Read a user's device file (top-level keys, see the module docstring).

    ``device_id`` defaults to the file name without its extension.
    """
    from convcost.inputs import NotAFile, open_file  # the spec reader's: a FIFO never blocks

    file = Path(path)
    try:
        with open_file(str(file)) as handle:
            # Read one byte past the limit instead of stat()-ing first: also right for pipes
            # and files that grow between the check and the read.
            data = handle.read(MAX_DEVICE_FILE_BYTES + 1)
    except NotAFile as refused:
        reason = os.strerror(errno.EISDIR) if refused.what == "a directory" else \
            "not a file but a device or socket"  # /dev/zero, /dev/tty
        raise DeviceError(f"cannot read device file {file}: {reason}") from None
    except OSError as error:
        reason = error.strerror or str(error)
        raise DeviceError(f"cannot read device file {file}: {reason}") from None
    if len(data) > MAX_DEVICE_FILE_BYTES:
        raise DeviceError(f"{file}: device file is larger than 1 MiB; refusing to read it "
                          f"(a device profile is a few hundred bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DeviceError(f"{file}: invalid TOML: not UTF-8 text (byte {error.start})") from None
    document = _parse_toml(text, str(file))
    return _device_from_table(device_id or file.stem, document, str(file), _USER_KIND,
                              f"device file {file}")


def local_profile_path() -> Path:
    """Where the ``local`` profile is read from: ``$CONVCOST_LOCAL_PROFILE`` if set and
    non-empty, else ``~/.config/convcost/local.toml``."""
    return Path(os.environ.get(LOCAL_PROFILE_ENV) or DEFAULT_LOCAL_PROFILE).expanduser()


def _looks_like_path(spec: str) -> bool:
    return "/" in spec or os.sep in spec or spec.lower().endswith(".toml") or spec.startswith("~")


def resolve_device(spec: str) -> Device:
    """A device from a shipped id (case-insensitive), ``local``, or a path to a TOML file.

    A shipped id wins over a file of the same name in the current directory; write ``./t4``
    to mean the file.
    """
    key = spec.strip()
    lowered = key.lower()
    if lowered == LOCAL_ID:
        path = local_profile_path()
        if not path.exists():
            raise DeviceError(
                f"no local device profile at {path}; run `convcost calibrate --save` to "
                f"measure this machine, or set {LOCAL_PROFILE_ENV} to a device file")
        return load_device_file(path, LOCAL_ID)
    for device in shipped_devices():
        if device.id == lowered:
            return device
    if _looks_like_path(key) or (key and Path(key).is_file()):
        return load_device_file(Path(key).expanduser())
    ids = list(shipped_ids())
    hint = _did_you_mean(key, ids)
    raise DeviceError(
        f"unknown device '{key}'{hint + ' ' if hint else '. '}Known devices: {', '.join(ids)}, "
        f"{LOCAL_ID} (this machine's saved profile), or a path to a .toml device file")


def device_to_json(device: Device) -> dict[str, object]:
    """The profile as JSON-ready data: FLOP/s, bytes/s and bytes as numbers."""
    return {
        "id": device.id,
        "name": device.name,
        "kind": device.kind,
        "peak": dict(device.peak),
        "bandwidth": device.bandwidth,
        "memory_bytes": device.memory_bytes,
        "source": device.source,
    }


def device_to_toml(device: Device) -> str:
    """The profile in the user-file form :func:`load_device_file` reads back exactly."""
    lines = [
        f"name = {_toml_string(device.name)}",
        f"kind = {_toml_string(device.kind)}",
        f"bandwidth = {_toml_float(device.bandwidth)}  # bytes/s",
    ]
    if device.memory_bytes is not None:
        lines.append(f"memory_bytes = {device.memory_bytes:_}")
    lines.append(f"source = {_toml_string(device.source)}")
    lines += ["", "[peak]  # FLOP/s (int8: OP/s)"]
    lines += [f"{dtype} = {_toml_float(value)}" for dtype, value in device.peak.items()]
    return "\n".join(lines) + "\n"


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n",
                 "\f": "\\f", "\r": "\\r"}


def _toml_string(text: str) -> str:
    """A TOML basic string; control characters (which TOML forbids raw) as escapes."""
    out = []
    for char in text:
        if char in _TOML_ESCAPES:
            out.append(_TOML_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _toml_float(value: float) -> str:
    """``value`` in engineering notation when that reads back exactly ('67.0e12'), else repr."""
    # Only for magnitudes profiles have (bytes/s to FLOP/s); outside, repr is as readable.
    if 1e3 <= abs(value) < 1e24:
        exponent = 3 * math.floor(math.log10(abs(value)) / 3)
        text = f"{value / 10.0**exponent!r}e{exponent}"
        if float(text) == value:
            return text
    return repr(value)
