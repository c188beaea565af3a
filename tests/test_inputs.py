"""Turning arguments into sources: chains, files, directories, globs, standard input."""

from __future__ import annotations

import io
from pathlib import Path

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
