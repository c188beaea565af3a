"""Analysing many inputs to JSON on several cores.

A large batch (a folder of specs, the model zoo) is split into contiguous runs of inputs of
about equal size. Forked worker processes analyse all runs but the first and send back each
model already written as compact JSON (:func:`convcost.cost.report.models_text`) and their
errors; this process analyses the first run meanwhile. The document is then exactly the one
a single process writes: models and errors in input order (the tests compare them byte for
byte). Analysis is pure computation on immutable values, so a forked worker needs nothing
from its parent but the inputs it is given.

A worker that fails in any way (killed, out of memory, a bug) is not trusted: its inputs are
analysed again here. Platforms without ``fork`` analyse everything in this process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence

from convcost.analysis import Analysis, Options, analyze_inputs, read_from_files
from convcost.errors import ConvcostError
from convcost.inputs import Input, collect

#: Below this much spec text (characters) a batch is analysed in one process: forking and
#: joining cost more than they save.
MIN_PARALLEL_CHARS = 32_768
#: Most worker processes used by default.
MAX_JOBS = 8


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


#: Looks at the run queue (seconds apart) before counting a process as holding a core.
RUN_QUEUE_LOOKS = (0.0, 0.001, 0.002)


def _running_now() -> int:
    """Processes in Linux's run queue besides this one (``OSError`` etc. where unknown)."""
    with open("/proc/loadavg", encoding="ascii") as handle:
        return max(0, int(handle.read().split()[3].split("/")[0]) - 1)


def others_running(sleep: Callable[[float], None] | None = None) -> float:
    """Processes running besides this one (Linux's run queue; else the 1-minute load
    average, or 0 where neither is known). The queue is read again, 1 and then 2 ms later,
    while it shows others, and the fewest seen count: a process that holds a core is there
    every time, a passing one (a kernel thread, a shell starting) is not."""
    import time

    pause = sleep or time.sleep
    try:
        fewest = _running_now()
        for wait in RUN_QUEUE_LOOKS[1:]:
            if fewest == 0:
                break
            pause(wait)
            fewest = min(fewest, _running_now())
        return float(fewest)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


def text_size(inputs: Sequence[Input]) -> int:
    """Characters of spec text in ``inputs``: the measure of work batches are cut by."""
    return sum(len(item.source.text) for item in inputs)


def default_jobs(inputs: Sequence[Input], load: float | None = None) -> int:
    """Processes worth using for ``inputs``: 1 for small batches, else up to the CPUs that
    are free. ``load`` is how many other processes are running (default:
    :func:`others_running`): a worker on a core another process holds only slows the whole
    run down."""
    if len(inputs) < 2 or not hasattr(os, "fork"):
        return 1
    size = text_size(inputs)
    if size < MIN_PARALLEL_CHARS:
        return 1
    if load is None:
        load = others_running()
    free = usable_cpus() - int(load + 0.5)
    return max(1, min(free, MAX_JOBS, len(inputs), size // (MIN_PARALLEL_CHARS // 2)))


def split(inputs: Sequence[Input], parts: int) -> list[list[Input]]:
    """``inputs`` cut into at most ``parts`` contiguous runs of about equal text size."""
    total = text_size(inputs) or 1
    runs: list[list[Input]] = [[]]
    done = 0
    for item in inputs:
        # Close the current run once it holds its share, keeping later runs non-empty.
        if runs[-1] and done >= total * len(runs) / parts and len(runs) < parts:
            runs.append([])
        runs[-1].append(item)
        done += len(item.source.text)
    return runs


#: Pieces of work per process, at least: text size predicts analysis time poorly (a short
#: spec may repeat a block 100 times), so processes take small pieces in turn until none
#: are left.
PIECES_PER_JOB = 6
#: ... and at most this much spec text per piece (characters, about 600 seed-sized models):
#: the last piece taken bounds how long one process works while the others wait, so with a
#: fixed number of pieces that wait grew with the batch (a twelfth of it at 2 jobs).
PIECE_CHARS = 1 << 18
#: ... but at most this many pieces: their numbers wait in a pipe (4 bytes each; a pipe
#: holds at least 16 KiB everywhere) before any worker reads it.
MAX_PIECES = 2048

#: A piece's results: its models as compact JSON, its model count, errors and warnings.
Done = tuple[str, int, list[ConvcostError], list[ConvcostError]]


def _analyze_piece(inputs: list[Input], options: Options,
                   finish: Callable[[Analysis], None]) -> Done:
    from convcost.cost.report import models_text

    analysis = analyze_inputs(inputs, options)
    finish(analysis)
    return (models_text(analysis.reports), len(analysis.models), analysis.errors,
            analysis.warnings)


def _next_piece(queue: int) -> int | None:
    """The next piece's number from the shared queue (4-byte reads of a pipe are whole), or
    None once it is empty."""
    data = os.read(queue, 4)
    return int.from_bytes(data, "little") if len(data) == 4 else None


class Worker:
    """A forked process taking pieces from the shared queue; :meth:`join` returns what it
    did."""

    def __init__(self, pieces: list[list[Input]], queue: int,
                 finish: Callable[[Analysis], None], options: Options) -> None:
        read, write = os.pipe()
        sys.stdout.flush()  # nothing buffered may be written twice
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - runs in the child, reported through the pipe
            os.close(read)
            _work(write, queue, pieces, options, finish)
        os.close(write)
        self.read = read

    def join(self) -> dict[int, Done]:
        """The pieces the worker finished, by number ({} if it failed: whatever it took is
        then done again here)."""
        chunks = []
        try:
            while True:
                chunk = os.read(self.read, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self.read)
            _, status = os.waitpid(self.pid, 0)
        if status != 0 or not chunks:
            return {}
        import pickle

        try:
            done: dict[int, Done] = pickle.loads(b"".join(chunks))
        except Exception:  # noqa: BLE001 - a garbled result is a failed worker
            return {}
        return done


def _work(write: int, queue: int, pieces: list[list[Input]], options: Options,
          finish: Callable[[Analysis], None]) -> None:  # pragma: no cover - child process
    """The child's whole life: take pieces until none are left, write what it did to
    ``write``, and exit without running any of the parent's clean-up (``os._exit``)."""
    code = 1
    try:
        import pickle

        done = {}
        while (number := _next_piece(queue)) is not None:
            done[number] = _analyze_piece(pieces[number], options, finish)
        for errors in (piece[2] for piece in done.values()):
            errors[:] = [error.with_traceback(None) for error in errors]
        view = memoryview(pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL))
        while view:
            view = view[os.write(write, view):]
        code = 0
    except BaseException:  # noqa: BLE001 - anything at all: the parent redoes its pieces
        code = 1
    finally:
        os._exit(code)


class RenderedAnalysis(Analysis):
    """An analysis whose later models arrive written as compact JSON (``rendered``), in
    input order after :attr:`models`; :attr:`count` counts both."""

    def __init__(self) -> None:
        super().__init__()
        self.rendered: list[str] = []
        self.rendered_count = 0

    @property
    def count(self) -> int:
        return len(self.models) + self.rendered_count


def analyze_rendered(inputs: list[Input], options: Options, jobs: int,
                     finish: Callable[[Analysis], None] = lambda analysis: None
                     ) -> RenderedAnalysis:
    """Analyse ``inputs`` with up to ``jobs`` processes; ``finish`` is applied to every part's
    analysis before its models are written (e.g. attaching roofline times)."""
    result = RenderedAnalysis()
    result.sources = len(inputs)
    result.batch_input = read_from_files(inputs)
    if jobs <= 1 or len(inputs) < 2:
        analysis = analyze_inputs(inputs, options)
        finish(analysis)
        result.models, result.errors = analysis.models, analysis.errors
        result.warnings = analysis.warnings
        return result
    parts = min(MAX_PIECES, max(jobs * PIECES_PER_JOB, -(-text_size(inputs) // PIECE_CHARS)))
    pieces = split(inputs, min(len(inputs), parts))
    queue, fill = os.pipe()
    # Largest first: the last pieces taken are the small ones, so no process is left working
    # on a big piece while the others wait for it.
    order = sorted(range(len(pieces)), key=lambda number: -text_size(pieces[number]))
    os.write(fill, b"".join(number.to_bytes(4, "little") for number in order))
    os.close(fill)  # at most MAX_PIECES numbers: well within a pipe's buffer
    workers: list[Worker] = []
    done: dict[int, Done] = {}
    try:
        for _ in range(jobs - 1):
            try:
                workers.append(Worker(pieces, queue, finish, options))
            except OSError:  # no more processes: this one does more of the pieces
                break
        while (number := _next_piece(queue)) is not None:
            done[number] = _analyze_piece(pieces[number], options, finish)
    finally:
        os.close(queue)
        for worker in workers:
            done.update(worker.join())
    for number, piece in enumerate(pieces):
        if number not in done:  # taken by a worker that failed: done here, in its turn
            done[number] = _analyze_piece(piece, options, finish)
        text, count, errors, warnings = done[number]
        result.rendered.append(text)
        result.rendered_count += count
        result.errors.extend(errors)
        result.warnings.extend(warnings)
    return result


def analyze_arguments_rendered(arguments: Sequence[str], options: Options, jobs: int = 0,
                               finish: Callable[[Analysis], None] = lambda analysis: None
                               ) -> RenderedAnalysis:
    """:func:`convcost.analysis.analyze_arguments` on up to ``jobs`` processes (0: as
    :func:`default_jobs` decides), later models written as compact JSON."""
    inputs, errors = collect(list(arguments))
    result = analyze_rendered(inputs, options, jobs or default_jobs(inputs), finish)
    result.add_unreadable(errors)
    return result
