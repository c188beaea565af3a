"""Device profiles (shipped data, user files, resolution, errors) and the roofline time math."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from convcost.cost.report import DTYPE_BYTES
from convcost.roofline import (
    DTYPES,
    MAX_DEVICE_FILE_BYTES,
    Device,
    DeviceError,
    LayerTime,
    device_to_json,
    device_to_toml,
    layer_time,
    load_device_file,
    model_time,
    resolve_device,
    ridge_point,
    shipped_devices,
)

GOOD = 'name = "Box"\nbandwidth = 100.0e9\n\n[peak]\nfloat32 = 1.0e12\n'


def write(tmp_path: Path, text: str, name: str = "box.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def device(peak: dict[str, float], bandwidth: float) -> Device:
    return Device(id="toy", name="Toy", kind="custom", peak=peak, bandwidth=bandwidth,
                  memory_bytes=None, source="test")


# --- shipped profiles ------------------------------------------------------------------------


def test_dtypes_match_the_memory_model() -> None:
    # Every dtype convcost sizes memory for can have a peak, and no other.
    assert set(DTYPES) == set(DTYPE_BYTES)


def test_shipped_profiles_are_complete_and_sane() -> None:
    devices = shipped_devices()
    assert len(devices) >= 12
    ids = [d.id for d in devices]
    assert len(set(ids)) == len(ids)
    for d in devices:
        assert d.id == d.id.lower() and d.id != "local"
        assert d.name.strip() and d.source.strip()
        assert "float32" in d.peak
        for value in (*d.peak.values(), d.bandwidth):
            assert isinstance(value, float) and math.isfinite(value) and value > 0
        assert d.memory_bytes is None or d.memory_bytes > 0
    assert {"gpu", "cpu", "soc"} <= {d.kind for d in devices}
    required = {"h100-sxm", "h200", "a100-80gb", "l4", "t4", "rtx4090", "m2-max", "a17-pro",
                "jetson-orin"}
    assert required <= set(ids)


def test_sparsity_is_never_the_peak() -> None:
    # Spot checks of halved figures, and every source that mentions sparsity says what the
    # dense figure is.
    by_id = {d.id: d for d in shipped_devices()}
    assert by_id["h100-sxm"].peak["float16"] == 989.5e12
    assert by_id["l4"].peak["int8"] == 242.5e12
    for d in shipped_devices():
        if "sparsity" in d.source:
            assert "dense" in d.source, d.id


def test_shipped_profiles_are_read_only_values() -> None:
    d = shipped_devices()[0]
    with pytest.raises(TypeError):
        d.peak["float32"] = 1.0  # type: ignore[index]
    assert hash(d) == hash(shipped_devices()[0])


# --- user files ------------------------------------------------------------------------------


def test_round_trip_of_every_shipped_profile(tmp_path: Path) -> None:
    for d in shipped_devices():
        loaded = load_device_file(write(tmp_path, device_to_toml(d), f"{d.id}.toml"))
        assert loaded == d


def test_round_trip_with_awkward_text_and_numbers(tmp_path: Path) -> None:
    d = Device(id="odd", name='Quote " back\\slash\ttab', kind="cpu",
               peak={"float64": 0.1 + 0.2, "float32": 1.7976931348623157e308, "int8": 5e-324},
               bandwidth=3.0, memory_bytes=2**40, source="line\nbreak \x7f del é")
    loaded = load_device_file(write(tmp_path, device_to_toml(d), "odd.toml"))
    assert loaded == d


def test_minimal_user_file_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    d = load_device_file(path)
    assert (d.id, d.name, d.kind, d.memory_bytes) == ("box", "Box", "custom", None)
    assert d.source == f"device file {path}"
    assert dict(d.peak) == {"float32": 1.0e12} and d.bandwidth == 100.0e9


def test_whole_number_floats_and_ints_are_accepted(tmp_path: Path) -> None:
    d = load_device_file(write(tmp_path, 'name = "B"\nbandwidth = 7\nmemory_bytes = 8e9\n'
                                         "[peak]\nint8 = 3\n"))
    assert d.bandwidth == 7.0 and d.memory_bytes == 8_000_000_000 and d.peak["int8"] == 3.0


def test_device_to_json() -> None:
    d = device({"float16": 2.0, "float32": 1.0}, 4.0)
    assert device_to_json(d) == {
        "id": "toy", "name": "Toy", "kind": "custom", "peak": {"float32": 1.0, "float16": 2.0},
        "bandwidth": 4.0, "memory_bytes": None, "source": "test",
    }


@pytest.mark.parametrize(("text", "message"), [
    ('bandwidth = 1.0\n[peak]\nfloat32 = 1.0\n',
     "missing required key 'name' (a display name)"),
    ('name = "B"\n[peak]\nfloat32 = 1.0\n',
     "missing required key 'bandwidth' (memory bandwidth in bytes/s)"),
    ('name = "B"\nbandwidth = 1.0\n',
     "missing required key 'peak' (a [peak] table of dtype = FLOP/s)"),
    ('name = "B"\nbandwidth = 1.0\npeak = 5.0\n',
     "peak must be a table of dtype = FLOP/s, like [peak] float32 = 1.0e12; got 5.0"),
    ('name = "B"\nbandwidth = 1.0\n[peak]\n',
     "peak is empty; give at least one dtype, e.g. float32 = 1.0e12"),
    ('name = "B"\nbandwidth = -5.0\n[peak]\nfloat32 = 1.0\n',
     "bandwidth must be a positive finite number (bytes/s), got -5.0"),
    ('name = "B"\nbandwidth = 0\n[peak]\nfloat32 = 1.0\n',
     "bandwidth must be a positive finite number (bytes/s), got 0"),
    ('name = "B"\nbandwidth = "fast"\n[peak]\nfloat32 = 1.0\n',
     "bandwidth must be a positive finite number (bytes/s), got 'fast'"),
    ('name = "B"\nbandwidth = true\n[peak]\nfloat32 = 1.0\n',
     "bandwidth must be a positive finite number (bytes/s), got true"),
    ('name = "B"\nbandwidth = 1.0\n[peak]\nfloat32 = nan\n',
     "peak.float32 must be a positive finite number (FLOP/s), got nan"),
    ('name = "B"\nbandwidth = 1.0\n[peak]\nfloat32 = inf\n',
     "peak.float32 must be a positive finite number (FLOP/s), got inf"),
    ('name = "B"\nbandwidth = 1.0\n[peak]\nfp32 = 1.0\n',
     ("unknown dtype 'fp32' in peak; did you mean 'float32'? "
     "(known: float32, float16, bfloat16, int8, float64)")),
    ('name = "B"\nbandwidth = 1.0\n[peak]\ntf32 = 1.0\n',
     "unknown dtype 'tf32' in peak (known: float32, float16, bfloat16, int8, float64)"),
    ('name = "B"\nbandwidth = 1.0\nmemory_bytes = -1\n[peak]\nfloat32 = 1.0\n',
     "memory_bytes must be a positive whole number of bytes, got -1"),
    ('name = "B"\nbandwidth = 1.0\nmemory_bytes = 1.5\n[peak]\nfloat32 = 1.0\n',
     "memory_bytes must be a positive whole number of bytes, got 1.5"),
    ('name = ""\nbandwidth = 1.0\n[peak]\nfloat32 = 1.0\n',
     "name must be a non-empty string, got ''"),
    ('name = "B"\nkind = 3\nbandwidth = 1.0\n[peak]\nfloat32 = 1.0\n',
     "kind must be a non-empty string, got 3"),
    ('name = "B"\nbandwith = 1.0\n[peak]\nfloat32 = 1.0\n',
     ("unknown key 'bandwith'; did you mean 'bandwidth'? "
     "(allowed: name, bandwidth, peak, kind, memory_bytes, source)")),
])
def test_user_file_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DeviceError) as caught:
        load_device_file(path)
    assert caught.value.message == f"{path}: {message}"
    assert str(caught.value) == caught.value.message
    assert isinstance(caught.value, ValueError)


def test_bad_toml(tmp_path: Path) -> None:
    # The parser's own message, with its line and column, follows our prefix verbatim (its
    # wording differs between tomllib and tomli versions, so it is taken from the parser).
    text = 'name = "B"\nbandwidth 1.0\n'
    with pytest.raises(tomllib.TOMLDecodeError) as parsed:
        tomllib.loads(text)
    assert "(at line 2, column 11)" in str(parsed.value)
    path = write(tmp_path, text)
    with pytest.raises(DeviceError) as caught:
        load_device_file(path)
    assert caught.value.message == f"{path}: invalid TOML: {parsed.value}"


def os_reason(path: Path) -> str:
    """The OS's own wording for why ``path`` cannot be opened (differs between systems)."""
    try:
        open(path, "rb").close()
    except OSError as error:
        return str(error.strerror)
    raise AssertionError(f"{path} is readable")


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(DeviceError) as caught:
        load_device_file(missing)
    assert caught.value.message == f"cannot read device file {missing}: {os_reason(missing)}"
    with pytest.raises(DeviceError) as caught:
        load_device_file(tmp_path)  # a directory
    assert caught.value.message == f"cannot read device file {tmp_path}: {os_reason(tmp_path)}"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'name = "caf\xe9"\n')
    with pytest.raises(DeviceError) as caught:
        load_device_file(path)
    assert caught.value.message == f"{path}: invalid TOML: not UTF-8 text (byte 11)"


def test_big_file_refused(tmp_path: Path) -> None:
    # Valid TOML padded with a comment: refused for its size alone, before parsing.
    fits = write(tmp_path, GOOD + "#" * (MAX_DEVICE_FILE_BYTES - len(GOOD) - 1) + "\n")
    assert fits.stat().st_size == MAX_DEVICE_FILE_BYTES
    assert load_device_file(fits).name == "Box"
    big = write(tmp_path, GOOD + "#" * (MAX_DEVICE_FILE_BYTES - len(GOOD)) + "\n", "big.toml")
    with pytest.raises(DeviceError) as caught:
        load_device_file(big)
    assert caught.value.message == (f"{big}: device file is larger than 1 MiB; refusing to read "
                                    f"it (a device profile is a few hundred bytes)")


# --- resolving a --device argument -----------------------------------------------------------


def test_resolve_shipped_ids_case_insensitively() -> None:
    for d in shipped_devices():
        assert resolve_device(d.id) is d
    assert resolve_device(" H100-SXM ").id == "h100-sxm"
    assert resolve_device("RTX4090").id == "rtx4090"


def test_resolve_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD, "mybox.toml")
    assert resolve_device(str(path)).id == "mybox"
    monkeypatch.chdir(tmp_path)
    assert resolve_device("mybox.toml").name == "Box"
    write(tmp_path, GOOD, "t4")  # a file named like a shipped id: the id wins, ./t4 is the file
    assert resolve_device("t4").name == "NVIDIA T4"
    assert resolve_device("./t4").name == "Box"
    with pytest.raises(DeviceError) as caught:
        resolve_device("other.toml")
    reason = os_reason(Path("other.toml"))
    assert caught.value.message == f"cannot read device file other.toml: {reason}"


def test_resolve_local_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, GOOD.replace("Box", "This machine"), "saved.toml")
    monkeypatch.setenv("CONVCOST_LOCAL_PROFILE", str(path))
    d = resolve_device("Local")
    assert (d.id, d.name) == ("local", "This machine")


def test_resolve_local_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONVCOST_LOCAL_PROFILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    profile = tmp_path / ".config" / "convcost" / "local.toml"
    with pytest.raises(DeviceError) as caught:
        resolve_device("local")
    assert caught.value.message == (
        f"no local device profile at {profile}; run `convcost calibrate --save` to measure "
        f"this machine, or set CONVCOST_LOCAL_PROFILE to a device file")
    profile.parent.mkdir(parents=True)
    profile.write_text(GOOD, encoding="utf-8")
    assert resolve_device("local").id == "local"


def test_unknown_device_did_you_mean() -> None:
    ids = ", ".join(d.id for d in shipped_devices())
    tail = (f"Known devices: {ids}, local (this machine's saved profile), "
            f"or a path to a .toml device file")
    with pytest.raises(DeviceError) as caught:
        resolve_device("a100")
    assert caught.value.message == f"unknown device 'a100'; did you mean 'a100-80gb'? {tail}"
    with pytest.raises(DeviceError) as caught:
        resolve_device("rtx-4090")
    assert caught.value.message == f"unknown device 'rtx-4090'; did you mean 'rtx4090'? {tail}"
    with pytest.raises(DeviceError) as caught:
        resolve_device("quantum")
    assert caught.value.message == f"unknown device 'quantum'. {tail}"


# --- roofline math ---------------------------------------------------------------------------


def test_layer_time_compute_bound() -> None:
    # 2e12 FLOP at 1e12 FLOP/s = 2 s; 1e9 bytes at 1e10 bytes/s = 0.1 s.
    d = device({"float32": 1e12}, 1e10)
    ops, nbytes = 2 * 10**12, 10**9
    assert layer_time(ops, nbytes, "float32", d) == LayerTime(2.0, "compute", ops, nbytes)


def test_layer_time_memory_bound() -> None:
    # 1e6 FLOP at 1e12 FLOP/s = 1 us; 4e9 bytes at 1e10 bytes/s = 0.4 s.
    d = device({"float32": 1e12, "int8": 4e12}, 1e10)
    t = layer_time(10**6, 4 * 10**9, "float32", d)
    assert (t.time_s, t.bound, t.ops, t.bytes) == (0.4, "memory", 10**6, 4 * 10**9)
    # The dtype picks the peak: 8e12 OP at 4e12 OP/s = 2 s > 0.4 s.
    ops, nbytes = 8 * 10**12, 4 * 10**9
    assert layer_time(ops, nbytes, "int8", d) == LayerTime(2.0, "compute", ops, nbytes)


def test_layer_time_tie_is_compute_bound() -> None:
    d = device({"float32": 1e12}, 1e10)  # ridge point 100 FLOP/byte
    assert ridge_point(d, "float32") == 100.0
    assert layer_time(10**12, 10**10, "float32", d) == LayerTime(1.0, "compute", 10**12, 10**10)
    assert layer_time(0, 0, "float32", d) == LayerTime(0.0, "compute", 0, 0)


def test_layer_time_on_a_shipped_device() -> None:
    # T4, float16: 65e12 FLOP/s, 320e9 bytes/s, ridge point 203.125 FLOP/byte.
    t4 = resolve_device("t4")
    assert ridge_point(t4, "float16") == 203.125
    # 3x3 conv 56x56x64 -> 64: 115,605,504 MACs; 2 bytes x (input + output + weights).
    ops, nbytes = 2 * 115_605_504, 2 * (2 * 56 * 56 * 64 + 3 * 3 * 64 * 64)
    assert ops / nbytes > 203.125
    assert layer_time(ops, nbytes, "float16", t4) == LayerTime(ops / 65e12, "compute", ops, nbytes)
    # Its depthwise version: 1,806,336 MACs on the same activations, 4.5 FLOP/byte.
    ops, nbytes = 2 * 1_806_336, 2 * (2 * 56 * 56 * 64 + 3 * 3 * 64)
    expected = LayerTime(nbytes / 320e9, "memory", ops, nbytes)
    assert layer_time(ops, nbytes, "float16", t4) == expected


def test_unknown_dtype_for_device() -> None:
    with pytest.raises(DeviceError) as caught:
        layer_time(1, 1, "bfloat16", resolve_device("t4"))
    assert caught.value.message == ("device 't4' (NVIDIA T4) has no bfloat16 peak; "
                                    "its dtypes: float32, float16, int8")
    with pytest.raises(DeviceError):
        ridge_point(resolve_device("epyc-9654"), "int8")
    with pytest.raises(DeviceError):
        model_time([], "float16", resolve_device("ryzen-7840u"))


def test_bad_counts_rejected() -> None:
    d = device({"float32": 1.0}, 1.0)
    for ops, nbytes in ((-1, 0), (0, -1), (1.5, 0), (True, 0)):
        with pytest.raises(ValueError):
            layer_time(ops, nbytes, "float32", d)  # type: ignore[arg-type]


def test_model_time() -> None:
    d = device({"float32": 1e12}, 1e10)
    total, layers, attainable = model_time([(2 * 10**12, 10**9), (10**6, 4 * 10**9)], "float32", d)
    assert [layer.bound for layer in layers] == ["compute", "memory"]
    assert total == 2.4
    assert attainable == (2 * 10**12 + 10**6) / 2.4
    assert model_time([], "float32", d) == (0.0, (), 0.0)
    assert model_time([(0, 0)], "float32", d).attainable_flops_per_s == 0.0


def test_a_fifo_or_device_never_blocks(tmp_path: Path) -> None:
    """`--device fifo.toml` waited forever for a writer; it now reads as empty (as specs and
    baselines do), and a device such as /dev/zero is refused."""
    import os

    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this platform")
    fifo = tmp_path / "pipe.toml"
    os.mkfifo(fifo)
    with pytest.raises(DeviceError) as caught:
        load_device_file(fifo)
    assert "missing required key 'name'" in caught.value.message
    if os.path.exists("/dev/zero"):
        with pytest.raises(DeviceError) as caught:
            load_device_file("/dev/zero")
        assert caught.value.message == ("cannot read device file /dev/zero: not a file but a "
                                        "device or socket")
