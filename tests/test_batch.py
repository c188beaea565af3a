"""Batches on several processes write exactly the document one process writes."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from convcost import batch
from convcost.analysis import Analysis, Options, analyze_arguments
from convcost.cost.report import document_text
from convcost.errors import Source
from convcost.inputs import Input

ROOT = Path(__file__).resolve().parent.parent
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")


def _inputs(sizes: list[int]) -> list[Input]:
    return [Input(Source(f"f{i}", "x" * size), "line") for i, size in enumerate(sizes)]


@pytest.mark.parametrize("sizes, parts", [
    ([10] * 10, 2), ([1, 1, 1, 100], 2), ([100, 1, 1, 1], 3), ([5], 4), ([3, 3, 3], 8),
    ([0, 0, 0, 0], 2)])
def test_split_keeps_order_and_balances(sizes: list[int], parts: int) -> None:
    inputs = _inputs(sizes)
    runs = batch.split(inputs, parts)
    assert [item for run in runs for item in run] == inputs
    assert all(runs) and len(runs) <= min(parts, len(inputs))
    if sizes == [10] * 10:
        assert [len(run) for run in runs] == [5, 5]


def test_small_batches_and_busy_machines_stay_in_one_process(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "usable_cpus", lambda: 4)
    assert batch.default_jobs(_inputs([100, 100]), load=0.0) == 1
    assert batch.default_jobs(_inputs([40_000]), load=0.0) == 1  # one input cannot be split
    big = _inputs([40_000] * 8)
    assert batch.default_jobs(big, load=0.0) == 4
    assert batch.default_jobs(big, load=1.2) == 3  # another process holds a core
    assert batch.default_jobs(big, load=3.9) == 1
    assert batch.default_jobs(_inputs([40_000, 40_000]), load=0.0) == 2


def _documents(tmp_path: Path, jobs: int,
               finish: Callable[[Analysis], None] = lambda analysis: None) -> tuple[str, str]:
    folder = tmp_path / "specs"
    if not folder.exists():
        shutil.copytree(ROOT / "examples", folder)
        (folder / "zoo" / "broken.convcost").write_text("bad: 8x8x3 -> 3x3(4) -> nope\n")
        (folder / "aaa.convcost").write_bytes(b"\xff\xfe")
    arguments = [str(folder), "8x8x3 -> 1x1(4)", str(tmp_path / "missing.convcost")]
    options = Options(batch=2, dtype="float16")
    serial = analyze_arguments(arguments, options)
    finish(serial)
    rendered = batch.analyze_arguments_rendered(arguments, options, jobs, finish)
    assert rendered.count == serial.count and rendered.sources == serial.sources
    assert [str(error) for error in rendered.errors] == [str(error) for error in serial.errors]
    return (document_text(serial.reports, serial.errors),
            document_text(rendered.reports, rendered.errors, rendered=rendered.rendered))


@needs_fork
@pytest.mark.parametrize("jobs", [2, 3])
def test_parallel_document_is_byte_identical(tmp_path: Path, jobs: int) -> None:
    serial, parallel = _documents(tmp_path, jobs)
    assert parallel == serial
    assert '"kind":"read"' in serial and '"kind":"spec"' in serial


@needs_fork
@pytest.mark.parametrize("piece_chars", [1, 200])
def test_pieces_are_cut_by_size_and_still_give_the_same_document(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piece_chars: int) -> None:
    """Large batches are cut into pieces of at most PIECE_CHARS of text (here tiny: a piece
    per file, or a few files), at most MAX_PIECES of them."""
    monkeypatch.setattr(batch, "PIECE_CHARS", piece_chars)
    monkeypatch.setattr(batch, "MAX_PIECES", 40)
    cuts: list[int] = []
    split = batch.split
    monkeypatch.setattr(batch, "split", lambda inputs, parts: cuts.append(parts) or
                        split(inputs, parts))
    serial, parallel = _documents(tmp_path, 2)
    assert parallel == serial
    assert cuts and all(12 < parts <= 40 for parts in cuts)


@needs_fork
def test_roofline_is_applied_in_every_part(tmp_path: Path) -> None:
    from convcost.roofline.apply import apply_to_analysis, resolve_devices

    devices = resolve_devices(["t4"])
    serial, parallel = _documents(tmp_path, 2, lambda part: apply_to_analysis(part, devices))
    assert parallel == serial and '"roofline":[{"device":"t4"' in parallel


@needs_fork
def test_a_failing_worker_is_redone_here(tmp_path: Path) -> None:
    parent = os.getpid()

    def finish(part: Analysis) -> None:
        if os.getpid() != parent:
            raise MemoryError("the worker dies")

    serial, parallel = _documents(tmp_path, 2, finish)
    assert parallel == serial


@needs_fork
def test_cli_jobs_give_the_same_output(run: Callable[..., Result],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "usable_cpus", lambda: 2)
    one = run("analyze", str(ROOT / "examples"), "--format", "json", "-j", "1")
    two = run("analyze", str(ROOT / "examples"), "--format", "json", "-j", "2")
    assert one.exit_code == two.exit_code == 0
    assert one.stdout == two.stdout and one.stderr == two.stderr


def test_cli_jobs_capped_at_the_usable_cpus(run: Callable[..., Result],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """-j 100000 forked a process per input (10x slower on 500 files); it is capped, with a
    note, and the output is unchanged."""
    monkeypatch.setattr(batch, "usable_cpus", lambda: 2)
    used: list[int] = []
    rendered = batch.analyze_arguments_rendered

    def spy(arguments: list[str], options: Options, jobs: int = 0,
            finish: Callable[[Analysis], None] = lambda analysis: None) -> object:
        used.append(jobs)
        return rendered(arguments, options, jobs, finish)

    monkeypatch.setattr(batch, "analyze_arguments_rendered", spy)
    one = run("analyze", str(ROOT / "examples"), "--format", "json", "-j", "1")
    many = run("analyze", str(ROOT / "examples"), "--format", "json", "-j", "100000")
    assert one.exit_code == many.exit_code == 0
    assert one.stdout == many.stdout
    assert "--jobs 100000 is more than the 2 usable CPUs; using 2" in many.stderr
    assert used == [2]  # (-j 1 analyses in this process, without the batch path)


def test_others_running_is_a_count_of_other_processes() -> None:
    assert batch.others_running() >= 0


@pytest.mark.parametrize("queue, expected, pauses", [
    ([0], 0, []),
    ([1, 0], 0, [0.001]),  # a passing process: gone 1 ms later
    ([1, 1, 1], 1, [0.001, 0.002]),  # one holding a core
    ([3, 2, 2], 2, [0.001, 0.002]),
])
def test_a_process_counts_only_when_it_stays_in_the_run_queue(
        monkeypatch: pytest.MonkeyPatch, queue: list[int], expected: int,
        pauses: list[float]) -> None:
    readings = iter(queue)
    monkeypatch.setattr(batch, "_running_now", lambda: next(readings))
    slept: list[float] = []
    assert batch.others_running(sleep=slept.append) == expected
    assert slept == pauses
