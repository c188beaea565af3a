"""``--bench`` as a library call: measure analysed models for real with the NumPy kernels.

Two measurements per model, both honest about their noise:

- the **chain**: the whole forward pass timed with :func:`convcost.bench.timing.measure`
  (warm-up, calibrated loops, >= 5 repeats, median and IQR, stability flag);
- the **steps**: every step timed *in place* during instrumented forward passes (so each step
  sees the caches it would see in a real run), median over the passes.

Both are watched (:class:`Monitor`): a short GEMM probe runs before and after every timed
block, and a layer's efficiency is reported only from blocks whose probes agree (the machine's
speed did not change meanwhile), against the peak those probes measured; each block's process
CPU time and the machine's ``/proc/stat`` say whether other processes held the cores
(:mod:`convcost.bench.contention`). Unstable, unsteady or contended runs are flagged, never
hidden.

Before anything is allocated the run's peak memory is estimated
(:func:`convcost.bench.executor.estimate`) and a model above the limit (half the available
RAM, ``--max-memory``, and what the address-space limit ``ulimit -v`` leaves) is refused; a
``MemoryError`` while it runs refuses that model too. Executed
shapes are checked against the analysis first; a difference is a bug
(:class:`~convcost.errors.InternalError`, raised, never turned into a refusal). A refused model
becomes a located :class:`~convcost.errors.BenchError` and the other models still run.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from convcost.analysis import Analyzed
from convcost.bench.contention import (
    CpuClock,
    StatReader,
    assess,
    combine,
    read_proc_stat,
    watch,
)
from convcost.bench.machine import (
    BLAS_RESERVE_BYTES,
    CALIBRATION_POLICY,
    EXECUTABLE_DTYPES,
    MARGIN_BYTES,
    address_space_headroom,
    available_memory,
    blas_threads,
    calibration_bytes,
    cpu_count,
    gemm_peak_gflops,
    gemm_probe,
    machine_record,
)
from convcost.bench.results import (
    PROBE_UNRELIABLE,
    TIMING_UNSTABLE,
    LayerBench,
    MachineRecord,
    ModelBench,
    classify_efficiency,
)
from convcost.bench.timing import (
    Probe,
    Timer,
    TimingPolicy,
    agree_mostly,
    measure,
    probe_agreement,
)
from convcost.errors import BenchError, BenchRefused, Span, UsageError
from convcost.lang.vocab import MAX_SIZE
from convcost.units import nbytes

if TYPE_CHECKING:
    from convcost.bench.executor import Executor
    from convcost.bench.kernels import Array

__all__ = ["BenchRun", "BenchSettings", "Monitor", "Progress", "bench_model", "bench_models",
           "make_monitor"]

#: Seconds of instrumented forward passes used for per-step times (at least 5 passes).
LAYER_SAMPLE_S = 0.25
#: Most instrumented passes, for chains that take microseconds.
MAX_LAYER_PASSES = 2000
#: Instrumented passes are run in this many blocks, each bracketed by GEMM probes.
LAYER_BLOCKS = 5
#: Probe readings (the fastest counts) for the reference taken right after calibrating.
REFERENCE_PROBES = 5
#: The most the calibrated peak may exceed the probe's reference reading (see make_monitor).
MAX_PEAK_PER_PROBE = 1.25

Progress = Callable[[int, int, str, str], None]
"""Called as ``progress(model_number, model_count, model_name, what)``; number 0 is the
set-up before the first model."""


@dataclass(frozen=True)
class BenchSettings:
    """How ``--bench`` runs.

    ``threads``: BLAS threads (None: as configured; above the usable CPUs it is capped, with
    a warning); ``max_memory``: bytes a model may take (None: half the available RAM);
    ``budget_s``: seconds per model's chain timing (None: no budget); ``gemm_peak_gflops``:
    the roof efficiencies are relative to (None: measured with the full calibration policy).
    Invalid values raise :class:`~convcost.errors.UsageError` naming the option.
    """

    dtype: str = "float32"
    batch: int = 1
    threads: int | None = None
    max_memory: int | None = None
    budget_s: float | None = None
    seed: int = 0
    gemm_peak_gflops: float | None = None

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise UsageError(f"batch must be at least 1, not {self.batch}", "--batch")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"BLAS threads must be at least 1, not {self.threads}",
                             "--threads")
        if self.max_memory is not None and self.max_memory < 1:
            raise UsageError(f"the memory limit must be positive, not {self.max_memory}",
                             "--max-memory")
        if self.budget_s is not None and not (math.isfinite(self.budget_s)
                                              and self.budget_s > 0):
            raise UsageError(f"the time budget must be a positive number of seconds, not "
                             f"{self.budget_s}", "--bench-budget")
        if self.gemm_peak_gflops is not None and not (math.isfinite(self.gemm_peak_gflops)
                                                      and self.gemm_peak_gflops >= 0):
            raise UsageError(f"the matrix-multiply peak must be a finite GFLOP/s >= 0, not "
                             f"{self.gemm_peak_gflops}", "gemm_peak_gflops")

    @property
    def policy(self) -> TimingPolicy:
        """The timing policy of a model's chain."""
        return TimingPolicy(budget_s=self.budget_s)


@dataclass(frozen=True)
class Monitor:
    """What watches a benchmark for a machine whose speed changes or whose cores are taken.

    ``probe``: a short GEMM returning GFLOP/s, run around every timed block (None: no probes;
    efficiencies are relative to the fixed peak); ``peak_per_probe``: the matrix-multiply
    peak per GFLOP/s of probe, both measured together right after calibration, so a probe
    reading x this is the peak at that moment; ``cpu_clock`` (None: not measured) and
    ``stat`` read process CPU seconds and the machine's CPU ticks; ``threads`` and ``cpus``
    are the threads run and the CPUs usable.
    """

    probe: Probe | None = None
    peak_per_probe: float = 1.0
    cpu_clock: CpuClock | None = time.process_time
    stat: StatReader = read_proc_stat
    threads: int = 1
    cpus: int = 1
    #: The probe's reading (GFLOP/s) when ``peak_per_probe`` was set (0.0: not measured).
    reference_gflops: float = 0.0


def _no_stat() -> None:
    return None


#: Watches nothing: no probe, no CPU clock, no ``/proc/stat``.
UNWATCHED = Monitor(cpu_clock=None, stat=_no_stat)


def make_monitor(dtype: str, peak_gflops: float, threads: int,
                 timer: Timer = time.perf_counter) -> Monitor:
    """The real monitor of a run at ``dtype`` with ``threads`` threads: a GEMM probe whose
    reference reading is taken now (call it right after measuring ``peak_gflops``)."""
    if dtype not in EXECUTABLE_DTYPES or peak_gflops <= 0:
        return Monitor(threads=threads, cpus=cpu_count())
    probe = gemm_probe(dtype, timer)
    probe()  # warm: first touches, BLAS thread start-up
    # The fastest reading: noise only ever slows a probe, as it slows the calibration.
    reference = max(probe() for _ in range(REFERENCE_PROBES))
    # On a quiet machine the probe reads within 25% of the peak (n=384 against n<=1536). A
    # ratio outside [1, 1.25] means one of the two was read in a slow phase: a peak below the
    # probe's reading is trusted to the probe, a probe far below the peak is capped.
    scale = min(MAX_PEAK_PER_PROBE, max(1.0, peak_gflops / reference)) if reference > 0 \
        else 1.0
    return Monitor(probe=probe, peak_per_probe=scale, threads=threads, cpus=cpu_count(),
                   reference_gflops=reference)


@dataclass(frozen=True)
class BenchRun:
    """The outcome of :func:`bench_models`: every model in input order (measured ones carry
    ``bench`` in their report and its layers), the machine, and the refusals."""

    models: tuple[Analyzed, ...]
    machine: MachineRecord
    errors: tuple[BenchError, ...]
    #: Notes about the run as a whole (e.g. threads capped at the CPU count).
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        """The ``machine`` member of a ``convcost/1`` document."""
        return {"machine": self.machine.to_json()}


def bench_models(models: Sequence[Analyzed], settings: BenchSettings,
                 progress: Progress | None = None, *,
                 clock: Timer = time.perf_counter,
                 monitor: Monitor | None = None) -> BenchRun:
    """Benchmark every model of ``models`` under ``settings``.

    A model above the memory limit, at a dtype NumPy cannot execute, or running out of memory
    becomes an error entry (:class:`~convcost.errors.BenchRefused`, or
    :class:`~convcost.errors.UnsupportedDtype` for the dtype) located at the model's line; the
    others are still measured. :class:`~convcost.errors.InternalError` (a bug) and
    ``KeyboardInterrupt`` propagate (BLAS threads are restored). ``clock`` times everything
    (inject a fake one in tests). ``monitor`` watches every model (default: a real GEMM probe,
    process CPU time and ``/proc/stat``, see :func:`make_monitor`; with an injected ``clock``
    the default watches nothing, so a test's fake clock never meets real readings).
    """
    say = progress or (lambda *_: None)
    threads, notes = capped_threads(settings.threads, "BLAS")
    ram_limit = settings.max_memory if settings.max_memory is not None \
        else available_memory() // 2
    dtype = settings.dtype.strip().lower()
    with blas_threads(threads):
        peak = settings.gemm_peak_gflops
        if peak is None:
            say(0, len(models), "", "calibrating the matrix-multiply peak")
            peak = _calibrated_peak(dtype, notes)
        _warm_compiled_kernels(models, dtype, notes, lambda what: say(0, len(models), "", what))
        machine = machine_record(dtype, peak)
        if monitor is None and clock is not time.perf_counter:
            monitor = UNWATCHED
        if monitor is None:
            try:
                monitor = make_monitor(dtype, peak, machine.threads)
            except MemoryError:  # not even the probe's matrices fit: measure unwatched
                monitor = Monitor(threads=machine.threads, cpus=cpu_count())
        watching = monitor

        def measure_one(model: Analyzed, step: Callable[[str], None]) -> Analyzed:
            headroom = address_space_headroom()
            # Once the probe has run, BLAS's buffer is mapped and counted in the headroom.
            reserve = MARGIN_BYTES if watching.probe is not None else BLAS_RESERVE_BYTES
            limit = ram_limit if headroom is None else \
                min(ram_limit, max(0, headroom - reserve))
            return bench_model(model, settings, peak_gflops=peak, max_memory=limit, clock=clock,
                               on_step=step, monitor=watching,
                               limit_reason="" if limit == ram_limit else
                               " (what the address-space limit, ulimit -v, leaves)")

        measured, errors = measure_each(
            models, measure_one, say, (MemoryError,),
            "lower --size/--batch, or raise the address-space limit (ulimit -v)")
    return BenchRun(tuple(measured), machine, tuple(errors), tuple(notes))


def capped_threads(threads: int | None, pool: str) -> tuple[int | None, list[str]]:
    """``threads`` capped at the usable CPUs, and the note that says so (``pool`` names the
    threads: 'BLAS', 'torch')."""
    if threads is None or threads <= cpu_count():
        return threads, []
    # Past 2^31 - 1 the command line keeps no exact count (see WholeNumber).
    asked = str(threads) if threads <= MAX_SIZE else f"more than {MAX_SIZE:,}"
    return cpu_count(), [f"{asked} {pool} threads asked for, but only {cpu_count()} CPUs are "
                         f"usable: running {cpu_count()}"]


def measure_each(models: Sequence[Analyzed],
                 measure: Callable[[Analyzed, Callable[[str], None]], Analyzed],
                 say: Progress, out_of_memory: tuple[type[BaseException], ...],
                 advice: str) -> tuple[list[Analyzed], list[BenchError]]:
    """Every model measured in turn (``measure(model, report_step)``); a refusal or running
    out of memory becomes that model's located error (``advice`` says what to lower) and the
    others go on. Returns the models in order (measured or as they were) and the errors."""
    measured: list[Analyzed] = []
    errors: list[BenchError] = []
    for number, model in enumerate(models, start=1):
        def step(what: str, number: int = number, name: str = model.report.name) -> None:
            say(number, len(models), name, what)
        try:
            measured.append(measure(model, step))
        except BenchError as error:
            errors.append(_located(type(error), model, error.message))
            measured.append(model)
        except out_of_memory:
            errors.append(_located(BenchRefused, model,
                                   f"ran out of memory while running; {advice}"))
            measured.append(model)
    return measured, errors


def _warm_compiled_kernels(models: Sequence[Analyzed], dtype: str, notes: list[str],
                           say: Callable[[str], None]) -> None:
    """Compile the numba kernels (the ``jit`` extra) before anything is timed when a model
    will run one, saying so: a first run compiles for about 15 s, later ones load numba's
    cache."""
    from convcost.bench.kernels import choose_algorithm, jit

    if not jit.enabled_for(dtype) or not any(
            choose_algorithm(step, dtype).endswith("-jit")
            for model in models for step in model.program.steps if step.kind == "conv"):
        return
    say("loading the compiled kernels (the first run compiles them, about 15 s)")
    seconds = jit.warm(dtype)
    if seconds >= 1.0:
        notes.append(f"compiled the numba kernels for {dtype} in {seconds:.1f} s; numba "
                     f"caches them, so later runs load them at once")


def _calibrated_peak(dtype: str, notes: list[str]) -> float:
    """The matrix-multiply peak of ``dtype`` (0.0: no efficiencies), measured unless the
    address-space limit leaves too little room for it (a note says so)."""
    if dtype not in EXECUTABLE_DTYPES:
        return 0.0
    import numpy  # noqa: F401  -- loaded (with its BLAS threads) before the headroom is read
    headroom = address_space_headroom()
    need = BLAS_RESERVE_BYTES + calibration_bytes(dtype)
    if headroom is not None and headroom < need:
        notes.append(f"the address-space limit (ulimit -v) leaves {nbytes(headroom)}, less "
                     f"than the {nbytes(need)} measuring the matrix-multiply peak takes: no "
                     f"efficiencies")
        return 0.0
    try:
        # The full policy and default sizes: a quick, small-matrix peak can read low on a
        # noisy machine and would report efficiencies above 100%.
        return gemm_peak_gflops(dtype, CALIBRATION_POLICY)
    except MemoryError:
        notes.append("out of memory while measuring the matrix-multiply peak: no efficiencies")
        return 0.0


def _located(kind: type[BenchError], model: Analyzed, reason: str) -> BenchError:
    """``benchmark of 'NAME' refused: REASON`` at the model's line."""
    program, report = model
    message = f"benchmark of '{report.name}' refused: {reason}"
    if program.source is not None:
        text = program.source.line_text(program.line)
        return kind.at(program.source, Span(program.line, 1, max(1, len(text))), message)
    return kind(message, report.source, report.line)


def bench_model(model: Analyzed, settings: BenchSettings, *, peak_gflops: float,
                max_memory: int | None, clock: Timer = time.perf_counter,
                on_step: Callable[[str], None] | None = None,
                policy: TimingPolicy | None = None, monitor: Monitor | None = None,
                limit_reason: str = "") -> Analyzed:
    """``model`` measured: its report with ``bench`` set on the model and every layer.
    ``policy`` replaces the chain's timing policy (default: ``settings.policy``); ``monitor``
    watches the run (default: no probe, efficiencies against ``peak_gflops``; process CPU
    time and ``/proc/stat`` read for contention); ``limit_reason`` explains ``max_memory``
    in the refusal.

    Raises :class:`~convcost.errors.UnsupportedDtype`, :class:`~convcost.errors.BenchRefused`
    (above ``max_memory`` bytes; unlocated, :func:`bench_models` locates it) or
    :class:`~convcost.errors.InternalError` (executed shapes differ from the analysis).
    """
    from convcost.bench.executor import Executor, estimate
    from convcost.bench.kernels import numpy_dtype

    say = on_step or (lambda _: None)
    watcher = monitor if monitor is not None else Monitor(cpus=cpu_count())
    program, report = model
    numpy_dtype(settings.dtype)  # UnsupportedDtype before anything else
    need = estimate(program, settings.batch, settings.dtype).total
    if max_memory is not None and need > max_memory:
        raise BenchRefused(
            f"benchmark needs an estimated {nbytes(need)} (weights, activations and work "
            f"buffers at batch {settings.batch}), above the limit of {nbytes(max_memory)}"
            f"{limit_reason}; raise --max-memory or lower --size/--batch", report.source,
            report.line)
    say("preparing weights")
    executor = Executor(program, settings.dtype, settings.batch, seed=settings.seed)
    x = executor.make_input()
    executor.check_shapes(x)
    say("timing the chain")
    policy = policy if policy is not None else settings.policy
    cpu_clock = watcher.cpu_clock if watcher.cpu_clock is not None else (lambda: 0.0)
    stop = watch(clock, cpu_clock, watcher.stat)
    chain = measure(lambda: executor.run(x), policy, clock, cpu_clock=watcher.cpu_clock,
                    probe=watcher.probe)
    chain_contention = assess(chain.block_s, chain.cpu_s, watcher.threads, watcher.cpus,
                              stop() if watcher.cpu_clock is not None else None,
                              "timing the chain")
    say("timing each layer")
    stop = watch(clock, cpu_clock, watcher.stat)
    passes = _in_place_times(executor, x, chain.median_s, policy.budget_s, clock, watcher)
    layer_contention = assess(passes.block_s, passes.cpu_s, watcher.threads, watcher.cpus,
                              stop() if watcher.cpu_clock is not None else None,
                              "timing the layers")
    contention = combine([chain_contention, layer_contention])
    agreement = probe_agreement(passes.probes)
    layers = [_layer_bench(costed.flops, costed.macs, kernel.algorithm, times, peak_gflops,
                           passes, agreement, watcher, policy)
              for costed, kernel, times in zip(report.layers, executor.kernels,
                                               passes.samples)]
    gflops = report.totals.flops / chain.median_s / 1e9 if chain.median_s > 0 else 0.0
    steady = chain.probes_agree and agree_mostly(agreement)
    notes = list(chain.warnings) + list(contention.notes)
    if not chain.probes_agree:
        notes.append("unsteady: the GEMM probes around the chain's timed blocks disagreed by "
                     "more than 10% (the machine's speed changed while timing it)")
    if not agree_mostly(agreement):
        notes.append("unsteady: the GEMM probes around the layers' timed blocks disagreed by "
                     "more than 10%; their efficiencies are withheld")
    bench = ModelBench(median_s=chain.median_s, iqr_s=chain.iqr_s, repeats=chain.repeats,
                       loops=chain.loops, gflops=gflops, stable=chain.stable,
                       warnings=tuple(notes), layers=tuple(layers), estimate_bytes=need,
                       contended=contention.contended, cpu_share=contention.cpu_share,
                       others_cores=contention.others_cores, probes_agree=steady)
    new_layers = tuple(layer._replace(bench=timing)
                       for layer, timing in zip(report.layers, layers))
    return Analyzed(program, report._replace(bench=bench, layers=new_layers))


@dataclass(frozen=True)
class _Passes:
    """Instrumented forward passes, in blocks: per-step seconds, block by block."""

    #: samples[step][block]: that step's seconds in each pass of the block.
    samples: list[list[list[float]]]
    #: Wall and process CPU seconds of every block (``cpu_s`` empty when not measured).
    block_s: list[float]
    cpu_s: list[float]
    #: GEMM probe readings (GFLOP/s) before the first block and after each; empty without.
    probes: list[float]


def _layer_bench(flops: int, macs: int, algorithm: str, blocks: list[list[float]],
                 peak_gflops: float, passes: _Passes, agreement: list[bool],
                 monitor: Monitor, policy: TimingPolicy) -> LayerBench:
    """One step's figures: median and IQR over all passes; efficiency from the blocks whose
    probes agreed, each against the peak its probes measured."""
    times = [seconds for block in blocks for seconds in block]
    median = statistics.median(times)
    q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
    gflops = flops / median / 1e9 if median > 0 else 0.0
    stable = median > 0 and (q3 - q1) / median <= policy.unstable_iqr_ratio
    raw: float | None = None
    if macs and peak_gflops > 0 and median > 0:
        if monitor.probe is None or not passes.probes:
            raw = gflops / peak_gflops
        else:
            readings = [flops / statistics.median(block) / 1e9
                        / ((before + after) / 2 * monitor.peak_per_probe)
                        for block, before, after, agreed
                        in zip(blocks, passes.probes, passes.probes[1:], agreement)
                        if agreed and statistics.median(block) > 0 and before + after > 0]
            raw = statistics.median(readings) if readings else gflops / peak_gflops
    efficiency, flag = classify_efficiency(raw, agree_mostly(agreement), stable)
    return LayerBench(median, q3 - q1, gflops, efficiency, algorithm,
                      stable and flag not in (PROBE_UNRELIABLE, TIMING_UNSTABLE), flag)


def _in_place_times(executor: Executor, x: Array, chain_s: float, budget_s: float | None,
                    clock: Timer, monitor: Monitor) -> _Passes:
    """Per-step seconds over enough instrumented passes (>= 5) to fill the sample time, in
    :data:`LAYER_BLOCKS` blocks bracketed by the monitor's probes."""
    sample_s = LAYER_SAMPLE_S if budget_s is None else min(LAYER_SAMPLE_S, budget_s / 2)
    passes = max(5, min(MAX_LAYER_PASSES, math.ceil(sample_s / max(chain_s, 1e-9))))
    blocks = min(LAYER_BLOCKS, passes)
    count = len(executor.kernels)
    samples: list[list[list[float]]] = [[] for _ in range(count)]
    times = [0.0] * count
    walls: list[float] = []
    cpus: list[float] = []
    probe = monitor.probe
    probes = [probe()] if probe is not None else []
    for block in range(blocks):
        for per_step in samples:
            per_step.append([])
        cpu_start = monitor.cpu_clock() if monitor.cpu_clock is not None else 0.0
        start = clock()
        # Spread the passes evenly: the first ``passes % blocks`` blocks take one more.
        for _ in range(passes // blocks + (block < passes % blocks)):
            executor.run(x, times, clock)
            for number, seconds in enumerate(times):
                samples[number][-1].append(seconds)
        walls.append(clock() - start)
        if monitor.cpu_clock is not None:
            cpus.append(monitor.cpu_clock() - cpu_start)
        if probe is not None:
            probes.append(probe())
    return _Passes(samples, walls, cpus, probes)
