"""``--bench`` as a library call: measure analysed models for real with the NumPy kernels.

Two measurements per model, both honest about their noise:

- the **chain**: the whole forward pass timed with :func:`convcost.bench.timing.measure`
  (warm-up, calibrated loops, >= 5 repeats, median and IQR, stability flag);
- the **steps**: every step timed *in place* during instrumented forward passes (so each step
  sees the caches it would see in a real run), median over the passes.

Before anything is allocated the run's peak memory is estimated
(:func:`convcost.bench.executor.estimate`) and a model above the limit is refused. Executed
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
from convcost.bench.machine import (
    CALIBRATION_POLICY,
    EXECUTABLE_DTYPES,
    available_memory,
    blas_threads,
    cpu_count,
    gemm_peak_gflops,
    machine_record,
)
from convcost.bench.results import LayerBench, MachineRecord, ModelBench
from convcost.bench.timing import Timer, TimingPolicy, measure
from convcost.errors import BenchError, BenchRefused, Span, UsageError
from convcost.units import nbytes

if TYPE_CHECKING:
    from convcost.bench.executor import Executor
    from convcost.bench.kernels import Array

__all__ = ["BenchRun", "BenchSettings", "Progress", "bench_model", "bench_models"]

#: Seconds of instrumented forward passes used for per-step times (at least 5 passes).
LAYER_SAMPLE_S = 0.25
#: Most instrumented passes, for chains that take microseconds.
MAX_LAYER_PASSES = 2000

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
                 clock: Timer = time.perf_counter) -> BenchRun:
    """Benchmark every model of ``models`` under ``settings``.

    A model above the memory limit, at a dtype NumPy cannot execute, or running out of memory
    becomes an error entry (:class:`~convcost.errors.BenchRefused`, or
    :class:`~convcost.errors.UnsupportedDtype` for the dtype) located at the model's line; the
    others are still measured. :class:`~convcost.errors.InternalError` (a bug) and
    ``KeyboardInterrupt`` propagate (BLAS threads are restored). ``clock`` times everything
    (inject a fake one in tests).
    """
    say = progress or (lambda *_: None)
    notes: list[str] = []
    threads = settings.threads
    if threads is not None and threads > cpu_count():
        notes.append(f"{threads} BLAS threads asked for, but only {cpu_count()} CPUs are "
                     f"usable: running {cpu_count()}")
        threads = cpu_count()
    limit = settings.max_memory if settings.max_memory is not None else available_memory() // 2
    dtype = settings.dtype.strip().lower()
    measured: list[Analyzed] = []
    errors: list[BenchError] = []
    with blas_threads(threads):
        peak = settings.gemm_peak_gflops
        if peak is None:
            say(0, len(models), "", "calibrating the matrix-multiply peak")
            # The full policy and default sizes: a quick, small-matrix peak can read low on a
            # noisy machine and would report efficiencies above 100%.
            peak = gemm_peak_gflops(dtype, CALIBRATION_POLICY) if dtype in EXECUTABLE_DTYPES else 0.0
        machine = machine_record(dtype, peak)
        for number, model in enumerate(models, start=1):
            def step(what: str, number: int = number, name: str = model.report.name) -> None:
                say(number, len(models), name, what)
            try:
                measured.append(bench_model(model, settings, peak_gflops=peak,
                                            max_memory=limit, clock=clock, on_step=step))
            except BenchError as error:
                errors.append(_located(type(error), model, error.message))
                measured.append(model)
            except MemoryError:
                errors.append(_located(BenchRefused, model,
                                       "ran out of memory while running; lower --size/--batch "
                                       "or --max-memory"))
                measured.append(model)
    return BenchRun(tuple(measured), machine, tuple(errors), tuple(notes))


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
                policy: TimingPolicy | None = None) -> Analyzed:
    """``model`` measured: its report with ``bench`` set on the model and every layer.
    ``policy`` replaces the chain's timing policy (default: ``settings.policy``).

    Raises :class:`~convcost.errors.UnsupportedDtype`, :class:`~convcost.errors.BenchRefused`
    (above ``max_memory`` bytes; unlocated, :func:`bench_models` locates it) or
    :class:`~convcost.errors.InternalError` (executed shapes differ from the analysis).
    """
    from convcost.bench.executor import Executor, estimate
    from convcost.bench.kernels import numpy_dtype

    say = on_step or (lambda _: None)
    program, report = model
    numpy_dtype(settings.dtype)  # UnsupportedDtype before anything else
    need = estimate(program, settings.batch, settings.dtype).total
    if max_memory is not None and need > max_memory:
        raise BenchRefused(
            f"benchmark needs an estimated {nbytes(need)} (weights, activations and work "
            f"buffers at batch {settings.batch}), above the limit of {nbytes(max_memory)}; "
            f"raise --max-memory or lower --size/--batch", report.source, report.line)
    say("preparing weights")
    executor = Executor(program, settings.dtype, settings.batch, seed=settings.seed)
    x = executor.make_input()
    executor.check_shapes(x)
    say("timing the chain")
    policy = policy if policy is not None else settings.policy
    chain = measure(lambda: executor.run(x), policy, clock)
    say("timing each layer")
    samples = _in_place_times(executor, x, chain.median_s, policy.budget_s, clock)
    layers = []
    for costed, kernel, times in zip(report.layers, executor.kernels, samples):
        median = statistics.median(times)
        q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
        gflops = costed.flops / median / 1e9 if median > 0 else 0.0
        efficiency = gflops / peak_gflops if peak_gflops > 0 and costed.macs else None
        stable = median > 0 and (q3 - q1) / median <= policy.unstable_iqr_ratio
        layers.append(LayerBench(median, q3 - q1, gflops, efficiency, kernel.algorithm, stable))
    gflops = report.totals.flops / chain.median_s / 1e9 if chain.median_s > 0 else 0.0
    bench = ModelBench(median_s=chain.median_s, iqr_s=chain.iqr_s, repeats=chain.repeats,
                       loops=chain.loops, gflops=gflops, stable=chain.stable,
                       warnings=chain.warnings, layers=tuple(layers), estimate_bytes=need)
    new_layers = tuple(layer._replace(bench=timing)
                       for layer, timing in zip(report.layers, layers))
    return Analyzed(program, report._replace(bench=bench, layers=new_layers))


def _in_place_times(executor: Executor, x: Array, chain_s: float, budget_s: float | None,
                    clock: Timer) -> list[list[float]]:
    """Per-step seconds over enough instrumented passes (>= 5) to fill the sample time."""
    sample_s = LAYER_SAMPLE_S if budget_s is None else min(LAYER_SAMPLE_S, budget_s / 2)
    passes = max(5, min(MAX_LAYER_PASSES, math.ceil(sample_s / max(chain_s, 1e-9))))
    count = len(executor.kernels)
    samples: list[list[float]] = [[] for _ in range(count)]
    times = [0.0] * count
    for _ in range(passes):
        executor.run(x, times, clock)
        for number, seconds in enumerate(times):
            samples[number].append(seconds)
    return samples
