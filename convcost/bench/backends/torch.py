"""``--bench --backend torch|torch-cuda``: time the PyTorch modules of ``convcost export``.

The same protocol as the NumPy backend (:mod:`convcost.bench.run`): the whole chain timed with
:func:`convcost.bench.timing.measure`, then every step timed in place during instrumented
forward passes, each step run on the inputs the pass just computed, median over the passes.
The modules are built from the exporter's source (executed, never written to a file) with
weights as PyTorch initialises them, in inference mode. ``--threads`` sets
``torch.set_num_threads`` for the run. On ``torch-cuda`` every timed region is bracketed by
``torch.cuda.synchronize()``, so a time covers the device's work, not just the launch.

Importing this module imports torch; :func:`convcost.bench.backends.check_backend` says
beforehand whether it can.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch

from convcost.analysis import Analyzed
from convcost.bench.machine import available_memory, cpu_count
from convcost.bench.results import LayerBench, MachineRecord, ModelBench
from convcost.bench.run import (
    LAYER_SAMPLE_S,
    MAX_LAYER_PASSES,
    BenchRun,
    BenchSettings,
    Progress,
    capped_threads,
    measure_each,
)
from convcost.bench.timing import Timer, TimingPolicy, measure
from convcost.errors import BenchRefused, InternalError, UnsupportedDtype
from convcost.export.torch import export_torch
from convcost.model.program import Program
from convcost.units import nbytes

#: convcost dtype names -> torch dtypes the backend runs.
DTYPES: dict[str, Any] = {"float32": torch.float32, "float64": torch.float64,
                          "float16": torch.float16, "bfloat16": torch.bfloat16}
#: Timing of the matrix-multiply peak (square ``torch.mm`` of these sizes, best median).
PEAK_POLICY = TimingPolicy(warmup=1, min_block_s=0.02, repeats=5, budget_s=1.5)
PEAK_SIZES = (512, 1024)

StepCall = Callable[..., Any]


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """``torch.set_num_threads(n)`` inside the block, restored afterwards (None: as is)."""
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _device(backend: str) -> Any:
    return torch.device("cuda" if backend == "torch-cuda" else "cpu")


def _sync(device: Any) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_peak_gflops(backend: str, dtype: str, clock: Timer = time.perf_counter) -> float:
    """Best median GFLOP/s of square ``torch.mm`` on the backend's device (2 n^3 per
    product); 0.0 for a dtype the backend does not run."""
    if dtype not in DTYPES:
        return 0.0
    device = _device(backend)
    best = 0.0
    with torch.inference_mode():
        for n in PEAK_SIZES:
            a = torch.ones(n, n, dtype=DTYPES[dtype], device=device)

            def product(a: Any = a) -> None:
                torch.mm(a, a)
                _sync(device)

            result = measure(product, PEAK_POLICY, clock)
            if result.median_s > 0:
                best = max(best, 2.0 * n ** 3 / result.median_s / 1e9)
    return best


def machine_record(backend: str, dtype: str, peak: float) -> MachineRecord:
    device = _device(backend)
    arch = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return MachineRecord(blas=f"torch {torch.__version__}", blas_arch=arch,
                         threads=torch.get_num_threads(), cpu_count=cpu_count(),
                         gemm_peak_gflops=peak, dtype=dtype, backend=backend)


def bench_models(models: Sequence[Analyzed], settings: BenchSettings, backend: str,
                 progress: Progress | None = None, *,
                 clock: Timer = time.perf_counter) -> BenchRun:
    """Benchmark every model with ``backend`` (``torch`` or ``torch-cuda``): as
    :func:`convcost.bench.run.bench_models`, refusals becoming located errors."""
    say = progress or (lambda *_: None)
    threads, notes = capped_threads(settings.threads, "torch")
    dtype = settings.dtype.strip().lower()
    limit = settings.max_memory if settings.max_memory is not None else available_memory() // 2
    exported = export_torch([model.program for model in models])
    namespace: dict[str, Any] = {}
    exec(compile(exported.source, "<convcost export>", "exec"), namespace)
    position = {id(model): number for number, model in enumerate(models)}
    with torch_threads(threads):
        peak = settings.gemm_peak_gflops
        if peak is None:
            say(0, len(models), "", "calibrating the matrix-multiply peak")
            peak = gemm_peak_gflops(backend, dtype, clock)
        machine = machine_record(backend, dtype, peak)

        def measure_one(model: Analyzed, step: Callable[[str], None]) -> Analyzed:
            number = position[id(model)]
            calls = [eval(source, namespace) for source in exported.steps[number]]
            return bench_model(model, namespace[exported.classes[number]], calls, settings,
                               backend, peak_gflops=peak, max_memory=limit, clock=clock,
                               on_step=step)

        measured, errors = measure_each(models, measure_one, say,
                                        (MemoryError, torch.cuda.OutOfMemoryError),
                                        "lower --size/--batch")
    return BenchRun(tuple(measured), machine, tuple(errors), tuple(notes))


def bench_model(model: Analyzed, module_class: Any, calls: list[StepCall],
                settings: BenchSettings, backend: str, *, peak_gflops: float,
                max_memory: int | None, clock: Timer = time.perf_counter,
                on_step: Callable[[str], None] | None = None) -> Analyzed:
    """``model`` measured with PyTorch: ``module_class`` is its exported class and ``calls``
    its step functions (:attr:`convcost.export.torch.TorchExport.steps`, evaluated)."""
    say = on_step or (lambda _: None)
    program, report = model
    if settings.dtype not in DTYPES:
        raise UnsupportedDtype(f"the {backend} backend runs {', '.join(DTYPES)}, not "
                               f"{settings.dtype}", report.source, report.line)
    need = _estimate(program, settings)
    if max_memory is not None and need > max_memory:
        raise BenchRefused(f"benchmark needs an estimated {nbytes(need)} at batch "
                           f"{settings.batch}, above the limit of {nbytes(max_memory)}; "
                           f"raise --max-memory or lower --size/--batch", report.source,
                           report.line)
    device = _device(backend)
    say("building the PyTorch module")
    torch.manual_seed(settings.seed)
    module = module_class().to(device=device, dtype=DTYPES[settings.dtype]).eval()
    shape = program.input
    x = torch.randn(settings.batch, shape.c, shape.h, shape.w, device=device,
                    dtype=DTYPES[settings.dtype])
    last = _last_reads(program)
    policy = settings.policy
    with torch.inference_mode():
        _check_shapes(program, module, calls, x, last)

        def chain() -> None:
            module(x)
            _sync(device)

        say("timing the chain")
        result = measure(chain, policy, clock)
        say("timing each layer")
        samples = _in_place_times(program, module, calls, x, last, result.median_s,
                                  policy.budget_s, clock, device)
    layers = []
    for costed, times in zip(report.layers, samples):
        median = statistics.median(times)
        q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive")
        gflops = costed.flops / median / 1e9 if median > 0 else 0.0
        efficiency = gflops / peak_gflops if peak_gflops > 0 and costed.macs else None
        stable = median > 0 and (q3 - q1) / median <= policy.unstable_iqr_ratio
        layers.append(LayerBench(median, q3 - q1, gflops, efficiency, backend, stable))
    gflops = report.totals.flops / result.median_s / 1e9 if result.median_s > 0 else 0.0
    bench = ModelBench(median_s=result.median_s, iqr_s=result.iqr_s, repeats=result.repeats,
                       loops=result.loops, gflops=gflops, stable=result.stable,
                       warnings=result.warnings, layers=tuple(layers), estimate_bytes=need,
                       backend=backend)
    new_layers = tuple(layer._replace(bench=timing)
                       for layer, timing in zip(report.layers, layers))
    return Analyzed(program, report._replace(bench=bench, layers=new_layers))


def _estimate(program: Program, settings: BenchSettings) -> int:
    """Bytes the run needs, as the NumPy backend estimates them (same element size)."""
    from convcost.bench.executor import estimate

    dtype = "float16" if settings.dtype == "bfloat16" else settings.dtype
    return estimate(program, settings.batch, dtype).total


def _last_reads(program: Program) -> list[tuple[int, ...]]:
    """Position -> the value ids read there for the last time (dropped after the step)."""
    last: dict[int, int] = {}
    for position, step in enumerate(program.steps):
        for value in step.inputs:
            last[value] = position
    drops: list[list[int]] = [[] for _ in program.steps]
    for value, position in last.items():
        if value != 0 and value != program.result:
            drops[position].append(value)
    return [tuple(values) for values in drops]


def _check_shapes(program: Program, module: Any, calls: list[StepCall], x: Any,
                  last: list[tuple[int, ...]]) -> None:
    """Run the steps once, comparing every output with the analysed shape; a difference is
    a bug (:class:`~convcost.errors.InternalError`, located at the step)."""
    values: dict[int, Any] = {0: x}
    batch = x.shape[0]
    for step, call, drops in zip(program.steps, calls, last):
        y = call(module, *[values[value] for value in step.inputs])
        out = step.output
        allowed = [(batch, out.c, out.h, out.w)] + ([(batch, out.c)] if out.h == out.w == 1
                                                    else [])
        if tuple(y.shape) not in allowed:
            raise InternalError(f"step {step.path} '{step.text}' gave {tuple(y.shape)} in "
                                f"PyTorch, but the analysis says {allowed[0]}; this is a bug "
                                f"in convcost", program.source.name if program.source else "",
                                step.line, step.column)
        values[step.out] = y
        for value in drops:
            del values[value]


def _in_place_times(program: Program, module: Any, calls: list[StepCall], x: Any,
                    last: list[tuple[int, ...]], chain_s: float, budget_s: float | None,
                    clock: Timer, device: Any) -> list[list[float]]:
    """Per-step seconds over enough instrumented passes (>= 5) to fill the sample time."""
    sample_s = LAYER_SAMPLE_S if budget_s is None else min(LAYER_SAMPLE_S, budget_s / 2)
    passes = max(5, min(MAX_LAYER_PASSES, math.ceil(sample_s / max(chain_s, 1e-9))))
    plan = [(call, step.inputs, step.out, drops)
            for call, step, drops in zip(calls, program.steps, last)]
    samples: list[list[float]] = [[] for _ in plan]
    for _ in range(passes):
        values: dict[int, Any] = {0: x}
        for number, (call, inputs, out, drops) in enumerate(plan):
            args = [values[value] for value in inputs]
            _sync(device)
            start = clock()
            values[out] = call(module, *args)
            _sync(device)
            samples[number].append(clock() - start)
            del args
            for value in drops:
                del values[value]
    return samples


__all__ = ["DTYPES", "bench_model", "bench_models", "gemm_peak_gflops", "torch_threads"]
