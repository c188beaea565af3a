"""Contention detection (convcost.bench.contention): process CPU time against wall time, and the
machine's busy share from /proc/stat, all through injected readings."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from convcost.bench.contention import (
    Contention,
    CpuTimes,
    Interval,
    assess,
    combine,
    read_proc_stat,
    watch,
)

PROC_STAT = """\
cpu  300 0 100 1000 10 0 5 5 0 0
cpu0 100 0 50 500 5 0 2 3 0 0
cpu1 200 0 50 500 5 0 3 2 0 0
intr 12 0 0
ctxt 99
"""


def _stat(tmp_path: Path, text: str = PROC_STAT) -> str:
    path = tmp_path / "stat"
    path.write_text(text, encoding="ascii")
    return str(path)


def test_proc_stat_sums_the_usable_cpus(tmp_path: Path) -> None:
    path = _stat(tmp_path)
    # busy = user + nice + system + irq + softirq + steal; total adds idle and iowait.
    assert read_proc_stat(path, {0, 1}) == CpuTimes(busy=155 + 255, total=660 + 760, cpus=2)
    assert read_proc_stat(path, {1}) == CpuTimes(busy=255, total=760, cpus=1)


def test_proc_stat_absent_or_garbled_is_none(tmp_path: Path) -> None:
    assert read_proc_stat(str(tmp_path / "missing"), {0}) is None
    assert read_proc_stat(_stat(tmp_path, "cpu0 a b c\n"), {0}) is None
    assert read_proc_stat(_stat(tmp_path, "intr 1\n"), {0}) is None  # no CPU lines


def test_proc_stat_of_this_machine_reads_or_skips() -> None:
    found = read_proc_stat()
    assert found is None or (found.cpus >= 1 and found.total >= found.busy >= 0)


def _interval(wall: float, cpu: float, busy_cores: float, cpus: int = 2) -> Interval:
    """A watched interval over which the machine had ``busy_cores`` busy on average."""
    ticks = 1000
    return Interval(wall, cpu, CpuTimes(0, 0, cpus),
                    CpuTimes(round(busy_cores * ticks), cpus * ticks, cpus))


def test_a_quiet_run_is_not_contended() -> None:
    # One thread, its main thread on a core all along; nothing else busy.
    found = assess([0.5] * 5, [0.5] * 5, threads=1, cpus=2,
                   interval=_interval(2.5, 2.5, busy_cores=1.05))
    assert found == Contention(False, 1.0, pytest.approx(0.05), ())


def test_one_thread_beside_a_busy_core_is_not_contended() -> None:
    # The other process had the other core: ours was free.
    found = assess([0.5] * 5, [0.49] * 5, threads=1, cpus=2,
                   interval=_interval(2.5, 2.45, busy_cores=1.98))
    assert not found.contended and found.others_cores == pytest.approx(1.0)


def test_two_threads_beside_a_busy_core_are_contended_and_told_to_use_one() -> None:
    found = assess([0.5] * 5, [0.65] * 5, threads=2, cpus=2,
                   interval=_interval(2.5, 3.25, busy_cores=2.0))
    assert found.contended
    assert found.cpu_share == pytest.approx(0.65)
    assert found.others_cores == pytest.approx(0.7)
    assert any("other processes kept 0.7 of 2 CPUs busy" in note for note in found.notes)
    assert any("--threads 1" in note for note in found.notes)


def test_a_descheduled_block_is_contended_without_proc_stat() -> None:
    found = assess([0.5, 0.5, 0.5], [0.5, 0.2, 0.5], threads=1, cpus=2, interval=None)
    assert found.contended and found.others_cores is None
    assert "got only 40% of a core" in found.notes[0]
    assert not any("--threads 1" in note for note in found.notes)  # already one thread


def test_no_cpu_clock_and_no_proc_stat_says_nothing() -> None:
    assert assess([0.5] * 5, [], threads=2, cpus=2, interval=None) == \
        Contention(False, None, None, ())


def test_all_cores_taken_suggests_nothing() -> None:
    # Others held 1.4 cores: less than one was free, so one thread would not help.
    busy = assess([0.5] * 5, [0.3] * 5, threads=2, cpus=2,
                  interval=_interval(2.5, 1.5, busy_cores=2.0))
    assert busy.contended and not any("--threads 1" in note for note in busy.notes)


def test_a_changed_cpu_set_or_a_stalled_stat_is_ignored() -> None:
    moved = Interval(1.0, 1.0, CpuTimes(0, 0, 2), CpuTimes(900, 1000, 1))
    assert assess([1.0], [1.0], 1, 2, moved).others_cores is None
    stalled = Interval(1.0, 1.0, CpuTimes(5, 10, 2), CpuTimes(5, 10, 2))
    assert assess([1.0], [1.0], 1, 2, stalled).others_cores is None


def test_watch_reads_the_clocks_and_the_stat_at_both_ends() -> None:
    wall = itertools.count(10.0, 2.0)
    cpu = itertools.count(1.0, 0.5)
    readings = iter([CpuTimes(1, 2, 2), CpuTimes(3, 4, 2)])
    stop = watch(lambda: next(wall), lambda: next(cpu), lambda: next(readings))
    assert stop() == Interval(2.0, 0.5, CpuTimes(1, 2, 2), CpuTimes(3, 4, 2))


def test_combine_keeps_the_worst() -> None:
    quiet = Contention(False, 0.9, 0.1, ())
    loud = Contention(True, 0.4, 1.2, ("contended: x", "advice"))
    assert combine([quiet, loud]) == Contention(True, 0.9, 1.2, ("contended: x", "advice"))
    assert combine([loud, loud]).notes == ("contended: x", "advice")
    assert combine([]) == Contention(False, None, None, ())
