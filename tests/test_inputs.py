"""Turning arguments into sources: chains, files, directories, globs, standard input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from convcost.inputs import MAX_FILE_BYTES, collect


def test_chains_files_and_stdin(tmp_path: Path) -> None:
    spec = tmp_path / "a.convcost"
    spec.write_text("a: 8 -> relu\n")
    inputs, errors = collect(["8 -> relu", str(spec), "-"], stdin=io.BytesIO(b"b: 8 -> id\n"))
    assert errors == []
    assert [(i.source.name, i.bare_names) for i in inputs] == \
        [("<arg>", "text"), (str(spec), "line"), ("<stdin>", "line")]


def test_a_bare_word_is_parsed_as_a_chain_but_a_path_is_a_file() -> None:
    inputs, errors = collect(["256"])
    assert [i.source.text for i in inputs] == ["256"] and errors == []
    _, errors = collect(["specs/missing.convcost"])
    assert [e.message for e in errors] == ["no such file: 'specs/missing.convcost'"]


def test_byte_order_mark_is_dropped(tmp_path: Path) -> None:
    spec = tmp_path / "bom.convcost"
    spec.write_bytes(b"\xef\xbb\xbfa: 8 -> relu\n")
    inputs, _ = collect([str(spec)])
    assert inputs[0].source.text == "a: 8 -> relu\n"


def test_oversized_and_unreadable_files(tmp_path: Path) -> None:
    big = tmp_path / "big.convcost"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    locked = tmp_path / "dir.convcost"
    locked.mkdir()  # a directory named like a spec: searched, holds nothing
    _, errors = collect([str(big), str(locked)])
    assert "file is larger than 16 MiB" in errors[0].message
    assert "no .convcost or .onnx files found in directory" in errors[1].message


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    spec = tmp_path / "latin.convcost"
    spec.write_bytes(b"a: 8 -> relu\nb: 8 -> id # \xe9t\xe9\n")
    _, errors = collect([str(spec)])
    error = errors[0]
    assert (error.line, error.column) == (2, 14)
    assert str(error).splitlines()[1:] == ["  b: 8 -> id # \ufffdt\ufffd", "  " + " " * 13 + "^"]


def test_utf16_and_utf32_files_with_a_byte_order_mark_are_decoded(tmp_path: Path) -> None:
    names = []
    for encoding in ("utf-16", "utf-16-be", "utf-32", "utf-32-be"):
        spec = tmp_path / f"{encoding}.convcost"
        text = "a: 8 -> relu\n"
        data = text.encode(encoding)
        if encoding.endswith("-be"):  # the explicit-endian codecs write no BOM themselves
            data = ("\ufeff" + text).encode(encoding)
        spec.write_bytes(data)
        names.append(str(spec))
    inputs, errors = collect(names)
    assert errors == []
    assert [i.source.text for i in inputs] == ["a: 8 -> relu\n"] * 4


def test_fifos_do_not_block_and_devices_are_refused(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe.convcost"
    os.mkfifo(fifo)  # no writer: a blocking open would hang here forever
    inputs, errors = collect([str(fifo), "/dev/zero"])
    assert [i.source.text for i in inputs] == [""]  # no writer: end of file at once
    assert [e.message.split(" is ")[1] for e in errors] == \
        ["not a file but a device or socket; to read a stream, pipe it to standard input and "
         "pass '-'"]


def test_a_pipe_with_a_writer_is_read(tmp_path: Path) -> None:
    import os

    read_end, write_end = os.pipe()  # what bash's <(command) passes as /dev/fd/N
    os.write(write_end, b"a: 8 -> relu\n")
    os.close(write_end)
    try:
        inputs, errors = collect([f"/dev/fd/{read_end}"])
    finally:
        os.close(read_end)
    assert errors == [] and inputs[0].source.text == "a: 8 -> relu\n"


def test_symlink_loops_are_scanned_once(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    (root / "sub").mkdir(parents=True)
    (root / "a.convcost").write_text("a: 8 -> relu\n")
    (root / "sub" / "b.convcost").write_text("b: 8 -> relu\n")
    (root / "sub" / "up").symlink_to("..")  # a loop back to the root
    (root / "self").symlink_to(".")
    (root / "again.convcost").symlink_to("a.convcost")  # the same file under two names
    inputs, errors = collect([str(root)])
    assert errors == []
    assert [Path(i.source.name).relative_to(root).as_posix() for i in inputs] == \
        ["a.convcost", "sub/b.convcost"]


def test_a_broken_spec_link_in_a_scan_is_an_error_not_skipped(tmp_path: Path) -> None:
    # Skipped, its models read as "removed" and check passed.
    root = tmp_path / "specs"
    root.mkdir()
    (root / "a.convcost").write_text("a: 8 -> relu\n")
    (root / "moved.convcost").symlink_to(tmp_path / "gone.convcost")
    (root / "loop.convcost").symlink_to("loop.convcost")
    (root / "notes").symlink_to(tmp_path / "gone")  # not a spec name: nothing to say
    inputs, errors = collect([str(root)])
    assert [Path(i.source.name).name for i in inputs] == ["a.convcost"]
    assert sorted(Path(e.source).name for e in errors) == ["loop.convcost", "moved.convcost"]
    assert all("(a broken symbolic link)" in e.message for e in errors)


def test_unreadable_subdirectory_is_an_error_with_the_reason(tmp_path: Path) -> None:
    import os

    root = tmp_path / "specs"
    (root / "locked").mkdir(parents=True)
    (root / "a.convcost").write_text("a: 8 -> relu\n")
    os.chmod(root / "locked", 0)
    try:
        if os.access(root / "locked", os.R_OK):  # running as root: permissions not enforced
            return
        inputs, errors = collect([str(root)])
    finally:
        os.chmod(root / "locked", 0o755)
    assert len(inputs) == 1
    assert errors[0].message.startswith("cannot read directory") and "ermission" in \
        errors[0].message


def test_file_names_that_are_not_utf8_are_escaped(tmp_path: Path) -> None:
    import os

    raw = os.fsencode(str(tmp_path)) + b"/bad\xff.convcost"
    with open(raw, "wb") as handle:
        handle.write(b"a: 8 -> bogus\n")
    inputs, errors = collect([os.fsdecode(raw)])
    name = inputs[0].source.name
    assert name.endswith("bad\\xff.convcost")
    name.encode("utf-8")  # valid text: JSON and tables can carry it


def test_chains_starting_with_a_dash_are_marked_as_specs() -> None:
    from convcost.inputs import SPEC_MARK, mark_specs

    assert mark_specs(["analyze", "-1 -> relu", "-> relu", "--format", "-"]) == \
        ["analyze", SPEC_MARK + "-1 -> relu", SPEC_MARK + "-> relu", "--format", "-"]
    inputs, _ = collect([SPEC_MARK + "-1 -> relu"])
    assert inputs[0].source.text == "-1 -> relu"


def test_closed_stdin_reads_as_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setattr(sys, "stdin", None)
    inputs, errors = collect(["-"])
    assert errors == [] and inputs[0].source.text == ""
