"""Benchmark a resolved network for real with the NumPy kernels.

Two measurements per model, both honest about their noise:

- the **chain**: the whole forward pass timed with :func:`convcost.bench.measure` (warm-up,
  calibrated loops, >= 5 repeats, median and IQR, stability flag);
- the **layers**: every step timed *in place* during instrumented forward passes (so each layer
  sees the caches it would see in a real run), median over the passes.

Before anything is allocated the benchmark's peak memory is estimated and a model above the
limit is refused with a clear message. Executed shapes are checked against the analysis; a
mismatch is a bug and is reported as such.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import TYPE_CHECKING, Any, Callable, NamedTuple

from convcost.bench.timing import Measurement, TimingPolicy, measure
from convcost.model.program import Branches, Layer, Network, Node
from convcost.cost.report import ModelReport
from convcost.units import nbytes

if TYPE_CHECKING:
    import numpy as np

    from convcost.bench.kernels.legacy import PreparedLayer

#: Seconds of instrumented forward passes used for per-layer times (at least 5 passes).
LAYER_SAMPLE_S = 0.25
#: Most instrumented passes, for chains that take microseconds.
MAX_LAYER_PASSES = 2000


class BenchRefused(Exception):
    """A model that cannot or may not be benchmarked (too large, unsupported dtype, a bug)."""


class LayerBench(NamedTuple):
    """One layer's measured time (seconds per batch) and what it achieved."""

    median_s: float
    iqr_s: float
    gflops: float
    efficiency: float | None
    algorithm: str

    def to_json(self) -> dict[str, Any]:
        return {"median_s": self.median_s, "iqr_s": self.iqr_s, "gflops": self.gflops,
                "efficiency": self.efficiency, "algorithm": self.algorithm}


class ModelBench(NamedTuple):
    """The whole chain's measurement, and its layers' in-place times in execution order."""

    chain: Measurement
    gflops: float
    layers: tuple[LayerBench, ...]
    estimate_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"median_s": self.chain.median_s, "iqr_s": self.chain.iqr_s,
                "repeats": self.chain.repeats, "loops": self.chain.loops,
                "gflops": self.gflops, "stable": self.chain.stable,
                "warnings": list(self.chain.warnings)}


class _Step(NamedTuple):
    """One call of the program: ``outputs[out] = layer(*(values[i] for i in inputs))``."""

    layer: Layer
    inputs: tuple[int, ...]
    out: int


def schedule(network: Network) -> tuple[list[_Step], int]:
    """The execution tree as a flat program over value slots (slot 0 is the input).

    Steps come in execution order (branch by branch, body before shortcut), the same order as
    :meth:`Network.layers`; returns the steps and the slot of the result.
    """
    steps: list[_Step] = []
    slots = [1]

    def new_slot() -> int:
        slots[0] += 1
        return slots[0] - 1

    def run(nodes: tuple[Node, ...], current: int) -> int:
        for node in nodes:
            if isinstance(node, Layer):
                out = new_slot()
                steps.append(_Step(node, (current,), out))
                current = out
            elif isinstance(node, Branches):
                outputs = tuple(run(branch, current) for branch in node.branches)
                out = new_slot()
                steps.append(_Step(node.concat, outputs, out))
                current = out
            else:
                body = run(node.body, current)
                shortcut = run(node.shortcut, current)
                out = new_slot()
                steps.append(_Step(node.add, (body, shortcut), out))
                current = out
        return current

    result = run(network.nodes, 0)
    return steps, result


class Program:
    """A prepared network that can run plainly or with a clock around every step."""

    def __init__(self, network: Network, prepared: list[PreparedLayer], batch: int) -> None:
        self.network = network
        self.steps, self.result = schedule(network)
        self.kernels = prepared
        self.batch = batch
        # Free every value after its last use, as a framework would.
        last_use: dict[int, int] = {}
        for number, step in enumerate(self.steps):
            for slot in step.inputs:
                last_use[slot] = number
        self.frees = [tuple(slot for slot in set(step.inputs) if last_use[slot] == number
                            and slot != self.result)
                      for number, step in enumerate(self.steps)]

    def run(self, x: np.ndarray[Any, Any], times: list[float] | None = None,
            clock: Callable[[], float] = time.perf_counter) -> np.ndarray[Any, Any]:
        """Forward pass; with ``times``, each step's seconds are written into it."""
        values: dict[int, Any] = {0: x}
        for number, (step, kernel) in enumerate(zip(self.steps, self.kernels)):
            args = [values[slot] for slot in step.inputs]
            if times is None:
                values[step.out] = kernel(*args)
            else:
                start = clock()
                values[step.out] = kernel(*args)
                times[number] = clock() - start
            for slot in self.frees[number]:
                del values[slot]
        result: np.ndarray[Any, Any] = values[self.result]
        return result

    def check_shapes(self, x: np.ndarray[Any, Any]) -> None:
        """Run once and compare every step's output with the analysed shape."""
        from convcost.bench.kernels.legacy import ShapeMismatchError

        values: dict[int, Any] = {0: x}
        for step, kernel in zip(self.steps, self.kernels):
            out = kernel(*(values[slot] for slot in step.inputs))
            layer = step.layer
            expected = (self.batch, layer.output.h, layer.output.w, layer.output.c)
            if tuple(out.shape) != expected:
                raise ShapeMismatchError(
                    f"layer {layer.path} '{layer.text}' produced {tuple(out.shape)}, but the "
                    f"analysis says {expected}; this is a bug in convcost")
            values[step.out] = out


def bench_network(network: Network, report: ModelReport, *, dtype: str, batch: int,
                  policy: TimingPolicy, peak_gflops: float | None, max_memory: int | None,
                  seed: int = 0, on_step: Callable[[str], None] | None = None) -> ModelBench:
    """Benchmark ``network`` (whose analysis is ``report``) with NumPy.

    Raises :class:`BenchRefused` when the estimated memory exceeds ``max_memory`` bytes, the
    dtype cannot be benchmarked, or executed shapes differ from the analysis.
    """
    import numpy as np

    from convcost import kernels

    say = on_step or (lambda _: None)
    try:
        np_dtype = kernels.numpy_dtype(dtype)
    except kernels.UnsupportedDtype as error:
        raise BenchRefused(str(error)) from None
    estimate = kernels.estimate_peak_bytes(network, batch, np_dtype.itemsize)
    if max_memory is not None and estimate > max_memory:
        raise BenchRefused(
            f"benchmark needs an estimated {nbytes(estimate)} (weights, activations and "
            f"work buffers at batch {batch}), above the limit of {nbytes(max_memory)}; "
            f"raise --max-memory or lower --size/--batch")
    say("preparing weights")
    rng = np.random.default_rng(seed)
    prepared = kernels.prepare_network(network, np_dtype, rng)
    program = Program(network, prepared.layers, batch)
    x = kernels.make_input(network.input, batch, np_dtype, rng)
    try:
        program.check_shapes(x)
    except kernels.ShapeMismatchError as error:
        raise BenchRefused(str(error)) from None

    say("timing the chain")
    chain = measure(lambda: program.run(x), policy)
    say("timing each layer")
    layer_times = _in_place_times(program, x, chain.median_s, policy.budget_s)
    flops = report.totals.flops
    layers = []
    for step, kernel, samples, costed in zip(program.steps, program.kernels, layer_times,
                                             report.layers):
        median = statistics.median(samples)
        quartiles = statistics.quantiles(samples, n=4, method="inclusive")
        gflops = costed.flops / median / 1e9 if median > 0 else 0.0
        efficiency = gflops / peak_gflops if peak_gflops and costed.macs else None
        layers.append(LayerBench(median, quartiles[2] - quartiles[0], gflops, efficiency,
                                 kernel.algorithm))
    gflops = flops / chain.median_s / 1e9 if chain.median_s > 0 else 0.0
    return ModelBench(chain, gflops, tuple(layers), estimate)


def _in_place_times(program: Program, x: np.ndarray[Any, Any], chain_s: float,
                    budget_s: float | None) -> list[list[float]]:
    """Per-step seconds over enough instrumented passes (>= 5) to fill the sample time."""
    sample_s = LAYER_SAMPLE_S if budget_s is None else min(LAYER_SAMPLE_S, budget_s / 2)
    passes = max(5, min(MAX_LAYER_PASSES, math.ceil(sample_s / max(chain_s, 1e-9))))
    samples: list[list[float]] = [[] for _ in program.steps]
    times = [0.0] * len(program.steps)
    for _ in range(passes):
        program.run(x, times)
        for number, seconds in enumerate(times):
            samples[number].append(seconds)
    return samples


def attach(report: ModelReport, bench: ModelBench) -> ModelReport:
    """``report`` with the measured figures in its ``bench`` fields (model and layers)."""
    layers = tuple(layer._replace(bench=timing.to_json())
                   for layer, timing in zip(report.layers, bench.layers))
    return report._replace(layers=layers, extra={**(report.extra or {}),
                                                 "bench": bench.to_json()})


class BenchSettings(NamedTuple):
    """How ``--bench`` runs: BLAS threads (None: as configured), memory limit in bytes (None:
    half the available RAM), time budget in seconds per model's chain timing (None: none)."""

    dtype: str = "float32"
    batch: int = 1
    threads: int | None = None
    max_memory: int | None = None
    budget_s: float | None = None
    seed: int = 0


def available_memory() -> int:
    """Bytes of RAM available to new allocations (MemAvailable on Linux)."""
    import os

    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


Progress = Callable[[int, int, str, str], None]
"""Called as ``progress(model_number, model_count, model_name, what)``."""


def bench_models(models: list[ModelReport], networks: list[Network], settings: BenchSettings,
                 progress: Progress | None = None
                 ) -> tuple[list[ModelReport], dict[str, Any], list[tuple[ModelReport, str]]]:
    """Benchmark every model; returns the reports with ``bench`` data, the ``machine`` JSON
    object, and the models refused with their reasons (the others are still measured)."""
    from convcost import bench

    report = progress or (lambda *_: None)
    limit = settings.max_memory if settings.max_memory is not None else available_memory() // 2
    policy = TimingPolicy(budget_s=settings.budget_s)
    measured: list[ModelReport] = []
    refused: list[tuple[ModelReport, str]] = []
    with bench.blas_threads(settings.threads):
        report(0, len(models), "", "calibrating the matrix-multiply peak")
        peak = _peak(settings.dtype)
        info = bench.machine_info()
        for number, (model, network) in enumerate(zip(models, networks), start=1):
            def step(what: str, number: int = number, name: str = model.name) -> None:
                report(number, len(models), name, what)
            try:
                timing = bench_network(network, model, dtype=settings.dtype,
                                       batch=settings.batch, policy=policy, peak_gflops=peak,
                                       max_memory=limit, seed=settings.seed, on_step=step)
            except BenchRefused as error:
                refused.append((model, str(error)))
                measured.append(model)
                continue
            measured.append(attach(model, timing))
    machine = {"blas": info.blas, "blas_arch": info.blas_arch, "threads": info.threads,
               "cpu_count": info.cpu_count, "gemm_peak_gflops": peak or 0.0,
               "dtype": settings.dtype}
    return measured, machine, refused


def _peak(dtype: str) -> float | None:
    """This machine's matrix-multiply peak for ``dtype`` (GFLOP/s), None if not measurable."""
    from convcost import bench

    # The full calibration policy and its default sizes: a quick, small-matrix peak can read
    # low on a noisy machine and would report efficiencies above 100%.
    try:
        return bench.gemm_peak_gflops(dtype, bench.CALIBRATION_POLICY)
    except ValueError:
        return None
