"""Was the machine ours while we timed? Contention from CPU time and ``/proc/stat``.

Two signals, both read around timed blocks:

- **process CPU time** (``time.process_time``: every thread of this process) against wall
  time. A benchmark's main thread computes all along, so a block whose CPU time is well below
  its wall time lost the CPU to someone else (or slept). Reported as ``cpu_share``: process
  CPU seconds / (wall seconds x threads).
- **the machine's busy share** from ``/proc/stat`` (Linux; absent elsewhere: skipped), read
  before and after the timed phase over the CPUs this process may run on: busy cores minus
  this process's own = the cores *others* kept busy. When others held a core our threads
  needed (more than the CPUs left over beyond ``threads``), the run is contended.

Everything here is deterministic given its inputs: tests inject the CPU clock and the
``/proc/stat`` reader. Nothing imports NumPy.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "CPU_SHARE_FLOOR",
    "OTHERS_SLACK_CORES",
    "Contention",
    "CpuClock",
    "CpuTimes",
    "Interval",
    "StatReader",
    "assess",
    "combine",
    "read_proc_stat",
    "watch",
]

#: Process CPU seconds; only differences are used (``time.process_time``: all threads).
CpuClock = Callable[[], float]


class CpuTimes(NamedTuple):
    """Cumulative ``/proc/stat`` ticks (USER_HZ) summed over the CPUs this process may use."""

    #: user + nice + system + irq + softirq + steal (steal: a hypervisor gave the CPU away).
    busy: int
    #: busy + idle + iowait.
    total: int
    #: How many CPUs were summed.
    cpus: int


#: Reads the machine's cumulative CPU times now, or None where there is no ``/proc/stat``.
StatReader = Callable[[], "CpuTimes | None"]

#: Cores others may keep busy beyond the ones we leave free before the run is contended:
#: short daemons and the tick granularity of ``/proc/stat`` (10 ms) stay below this.
OTHERS_SLACK_CORES = 0.5
#: A block whose main thread got less than this share of one core was descheduled.
CPU_SHARE_FLOOR = 0.75


def _usable_cpus() -> set[int] | None:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return None


def read_proc_stat(path: str = "/proc/stat", cpus: set[int] | None = None) -> CpuTimes | None:
    """The machine's cumulative CPU ticks over ``cpus`` (default: this process's affinity
    mask), or None when ``path`` is missing or unreadable (non-Linux)."""
    wanted = cpus if cpus is not None else _usable_cpus()
    busy = total = count = 0
    try:
        with open(path, encoding="ascii") as handle:
            for line in handle:
                if not line.startswith("cpu") or line.startswith("cpu "):
                    continue
                name, *fields = line.split()
                if wanted is not None and int(name[3:]) not in wanted:
                    continue
                ticks = [int(field) for field in fields[:8]] + [0] * (8 - len(fields[:8]))
                user, nice, system, idle, iowait, irq, softirq, steal = ticks
                work = user + nice + system + irq + softirq + steal
                busy += work
                total += work + idle + iowait
                count += 1
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return CpuTimes(busy, total, count) if count else None


@dataclass(frozen=True)
class Contention:
    """Whether others held the cores during a timed phase, and the figures that say so."""

    contended: bool
    #: Process CPU seconds / (wall seconds x threads) over all timed blocks; None without a
    #: CPU clock.
    cpu_share: float | None
    #: Cores kept busy by other processes on average (from ``/proc/stat``); None without it.
    others_cores: float | None
    #: Human-readable reasons and advice (empty when not contended).
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"contended": self.contended, "cpu_share": self.cpu_share,
                "others_cores": self.others_cores}


class Interval(NamedTuple):
    """A stretch of time watched by :func:`watch`: its wall and process CPU seconds and the
    machine's CPU times at both ends (None where ``/proc/stat`` is absent)."""

    wall_s: float
    cpu_s: float
    before: CpuTimes | None
    after: CpuTimes | None


def watch(clock: Callable[[], float], cpu_clock: CpuClock,
          stat: StatReader) -> Callable[[], Interval]:
    """Start watching now; the returned function ends the interval and returns it."""
    before, wall, cpu = stat(), clock(), cpu_clock()

    def stop() -> Interval:
        wall_s, cpu_s = clock() - wall, cpu_clock() - cpu
        return Interval(wall_s, cpu_s, before, stat())

    return stop


def assess(wall_s: Sequence[float], cpu_s: Sequence[float], threads: int, cpus: int,
           interval: Interval | None, phase: str = "") -> Contention:
    """Contention over timed blocks of ``wall_s`` seconds that used ``cpu_s`` process CPU
    seconds (same length, or ``cpu_s`` empty when not measured), run with ``threads``
    threads on ``cpus`` usable CPUs, inside the watched ``interval`` (whose machine readings
    say what the whole machine did meanwhile). ``phase`` (e.g. "timing the chain") is named
    in the notes.

    Contended when any block's CPU time is below :data:`CPU_SHARE_FLOOR` of its wall time
    (the main thread was descheduled), or when others kept more than ``cpus - threads`` +
    :data:`OTHERS_SLACK_CORES` cores busy. Suggests ``--threads 1`` when at least one core
    was free and more threads were used.
    """
    wall = sum(wall_s)
    during = f" ({phase})" if phase else ""
    notes: list[str] = []
    contended = False
    share: float | None = None
    if cpu_s and len(cpu_s) == len(wall_s) and wall > 0:
        share = sum(cpu_s) / wall / threads
        worst = min((c / w for c, w in zip(cpu_s, wall_s) if w > 0), default=1.0)
        if worst < CPU_SHARE_FLOOR:
            contended = True
            notes.append(f"contended: a timed block got only {worst:.0%} of a core's CPU time "
                         f"(the process was waiting for a CPU){during}")
    others: float | None = None
    before, after = (interval.before, interval.after) if interval is not None else (None, None)
    if interval is not None and before is not None and after is not None \
            and after.total > before.total and after.cpus == before.cpus \
            and interval.wall_s > 0:
        busy_cores = (after.busy - before.busy) / (after.total - before.total) * after.cpus
        others = max(0.0, busy_cores - interval.cpu_s / interval.wall_s)
        spare = max(0, cpus - threads)
        if others is not None and others > spare + OTHERS_SLACK_CORES:
            contended = True
            notes.append(f"contended: other processes kept {others:.1f} of {cpus} CPUs busy "
                         f"while {threads} thread{'s' if threads != 1 else ''} ran{during}")
    if contended and threads > 1 and others is not None and cpus - others >= 1 - 0.25:
        notes.append("at least one core was free: --threads 1 measures more reliably here")
    return Contention(contended, share, others, tuple(notes))



def combine(parts: Sequence[Contention]) -> Contention:
    """Several phases' contention as one: contended if any was; the first phase's CPU share;
    the most cores others held; every note once."""
    shares = [part.cpu_share for part in parts if part.cpu_share is not None]
    others = [part.others_cores for part in parts if part.others_cores is not None]
    notes = dict.fromkeys(note for part in parts for note in part.notes)
    return Contention(any(part.contended for part in parts), shares[0] if shares else None,
                      max(others) if others else None, tuple(notes))
