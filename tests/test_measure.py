"""Running programs for real: the executor (order, liveness, shape checks), the memory
estimate against what is really allocated, every example's geometry, and ``bench_models``.

Deterministic: every timing goes through an injected clock, weights are seeded, and no test
asserts on a real duration or a ratio of durations.
"""

from __future__ import annotations

import itertools
import tracemalloc
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convcost.analysis import Analyzed, Options, analyze_inputs, analyze_text
from convcost.bench.executor import Executor, estimate, estimate_bytes
from convcost.bench.kernels import choose_algorithm, kernel_class, prepare_step
from convcost.bench.results import LayerBench, ModelBench
from convcost.bench.run import BenchRun, BenchSettings, bench_models
from convcost.cost.memory import live_profile, storage
from convcost.cost.report import document
from convcost.errors import BenchRefused, InternalError, UnsupportedDtype, UsageError
from convcost.inputs import collect
from convcost.model.program import Program, Shape, Step
from tests.conftest import EXAMPLES
from tests.test_kernels import axis_geometry, deconv_axis

SMALL = ("8x8x3 -> 3x3(8) -> [1x1(4) | 3x3(4) -> relu | id] -> res[3x3(16) -> bn] -> "
         "res[3x3(6, s=2) | 1x1(6, s=2, p=valid)] -> dropout -> gap -> fc(5)")


def _models(text: str, options: Options | None = None) -> list[Analyzed]:
    analysis = analyze_text(text, options or Options())
    assert analysis.errors == []
    return analysis.models


def _program(text: str) -> Program:
    return _models(text)[0].program


def ticking(tick: float = 0.125) -> Callable[[], float]:
    """A clock that advances ``tick`` seconds per reading."""
    counter = itertools.count(1)
    return lambda: next(counter) * tick


# ---------------------------------------------------------------------------------------------
# The executor


def test_executor_runs_the_program_in_order() -> None:
    program = _program(SMALL)
    executor = Executor(program, "float64", batch=2, seed=3)
    x = executor.make_input()
    y = executor.run(x)
    assert y.shape == (2, 1, 1, 5) and y.dtype == np.float64
    # The same computation by hand, step by step through the prepared kernels.
    k = {kernel.step.path: kernel for kernel in executor.kernels}
    s = k["1"](x)
    cat = k["2.concat"](k["2.b1.1"](s), k["2.b2.2"](k["2.b2.1"](s)), k["2.b3.1"](s))
    r = k["3.add"](k["3.body.2"](k["3.body.1"](cat)), cat)
    r = k["4.add"](k["4.body.1"](r), k["4.short.1"](r))
    expected = k["7"](k["6"](k["5"](r)))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_array_equal(executor.check_shapes(x), y)


def test_in_place_times_use_the_clock_given() -> None:
    program = _program(SMALL)
    executor = Executor(program, "float32")
    times = [-1.0] * len(program.steps)
    executor.run(executor.make_input(), times, ticking(0.5))
    assert times == [0.5] * len(program.steps)


@pytest.mark.parametrize("text", [
    SMALL,
    "8x8x4 -> id",
    "8x8x4 -> [id | dropout] -> res[relu -> id] -> id",
    "8x8x4 -> [1x1(2) | 3x3(2) -> relu] -> res[1x1(4) -> bn | 1x1(4)] -> gap",
    "16x16x4 -> 3x3(8) -> maxpool2x2 -> up2 -> res[3x3(8) -> relu] -> softmax",
])
def test_values_are_freed_exactly_as_the_memory_model_says(text: str) -> None:
    """Live step outputs during a run, tracked by weak references, equal the liveness of
    cost/memory.py at every step (aliases share their source's buffer)."""
    program = _program(text)
    batch = 2
    executor = Executor(program, "float32", batch=batch)
    tracked: list[weakref.ref[Any]] = []
    observed: list[int] = []

    def wrap(run: Callable[..., Any]) -> Callable[..., Any]:
        def inner(*args: Any) -> Any:
            y = run(*args)
            if all(y is not arg for arg in args):
                tracked.append(weakref.ref(y))
            alive = [ref() for ref in tracked]
            observed.append(sum(a.size for a in alive if a is not None))
            return y
        return inner

    executor._calls = tuple((wrap(run), inputs, out, frees)
                            for run, inputs, out, frees in executor._calls)
    x = executor.make_input()
    executor.run(x)
    profile = live_profile(program)
    owner = storage(program)
    input_last = max((p for p, step in enumerate(program.steps)
                      if any(owner[v] == 0 for v in step.inputs)), default=-1)
    if owner[program.result] == 0:
        input_last = len(program.steps)
    expected = [(live - (program.input.elements if p <= input_last else 0)) * batch
                for p, live in enumerate(profile.live)]
    assert observed == expected


def test_an_executed_shape_that_differs_is_a_located_internal_error() -> None:
    program = _program("8x8x4 -> 1x1(4) -> relu")
    relu = program.steps[1]
    wrong = program._replace(steps=(program.steps[0], relu._replace(output=Shape(4, 4, 4))))
    executor = Executor(wrong, "float32")
    with pytest.raises(InternalError) as info:
        executor.check_shapes(executor.make_input())
    error = info.value
    assert error.kind == "internal"
    assert "step 2 'relu' produced float32 (1, 8, 8, 4), but the analysis says float32 " \
           "(1, 4, 4, 4); this is a bug in convcost" in error.message
    assert (error.source, error.line, error.column) == ("<arg>", 1, 20)
    assert "^^^^" in str(error)


def test_a_kernel_failing_on_its_geometry_is_an_internal_error() -> None:
    program = _program("8x8x4 -> 1x1(4)")
    conv = program.steps[0]
    wrong = program._replace(steps=(conv._replace(output=Shape(4, 4, 4)),))
    executor = Executor(wrong, "float32")
    with pytest.raises(InternalError, match=r"step 1 '1x1\(4\)' failed on its analysed "
                                            r"geometry .*this is a bug"):
        executor.check_shapes(executor.make_input())


def test_wrong_inputs_and_settings_are_rejected() -> None:
    executor = Executor(_program("8x8x4 -> relu"), "float32", batch=2)
    with pytest.raises(ValueError, match=r"float32 inputs of shape \(2, 8, 8, 4\)"):
        executor.check_shapes(np.zeros((1, 8, 8, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="batch"):
        Executor(_program("8x8x4 -> relu"), batch=0)
    with pytest.raises(UnsupportedDtype, match="bfloat16"):
        Executor(_program("8x8x4 -> relu"), "bfloat16")


# ---------------------------------------------------------------------------------------------
# The memory estimate against what is really allocated


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
@pytest.mark.parametrize("text", [
    SMALL,
    "16x16x8 -> 3x3(16) -> 3x3(16, s=2) -> 5x5(16, g=4) -> 3x3(16, dw) -> deconv4x4(8, s=2)",
    "24x24x8 -> [1x1(8) | 3x3(8) | maxpool3x3(s=1)] -> avgpool2x2 -> fc(300) -> softmax",
    "8x8x4 -> id",
])
def test_the_estimate_covers_what_is_really_allocated(text: str, dtype: str) -> None:
    program = _program(text)
    need = estimate(program, 3, dtype)
    # One untraced run first: one-time costs (a lazily imported module, a cache filled on
    # first use) would otherwise land in the traced peak when this test runs first in its
    # process, and depend on the test order.
    warm = Executor(program, dtype, batch=3)
    warm.run(warm.make_input(), [0.0] * len(program.steps))
    del warm
    # tracemalloc counts every thread's allocations (a test runner's I/O thread too): the
    # smaller of two traced runs is this run's own peak.
    peaks = []
    for _ in range(2):
        tracemalloc.start()
        try:
            executor = Executor(program, dtype, batch=3)
            x = executor.make_input()
            executor.check_shapes(x)
            executor.run(x, [0.0] * len(program.steps))
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        del x
    peak = min(peaks)
    # Python objects (prepared steps, plans, frames) add a few tens of KiB to the arrays.
    assert peak <= need.total + 64 * 1024
    assert need.total <= 2 * peak + 64 * 1024  # and it is not wildly conservative
    assert need.weights == sum(k.param_bytes for k in executor.kernels)
    assert need.workspace >= executor.workspace.nbytes


def test_estimate_parts() -> None:
    program = _program("64x64x8 -> 3x3(16) -> relu")
    f32, f16 = estimate(program, 2, "float32"), estimate(program, 2, "float16")
    elements = 2 * 64 * 64 * 8
    assert f16.input_transient == elements * (4 + 2)  # drawn in float32, cast to float16
    assert f32.input_transient == elements * 4
    weight = 3 * 3 * 8 * 16
    # im2col-gemm: the float32 draw of the weight, and its regrouped copy before the bias row
    assert choose_algorithm(program.steps[0]) == "im2col-gemm"
    assert f16.prepare_transient == 4 * weight + 2 * weight
    assert f32.prepare_transient == 4 * weight
    assert estimate_bytes(program, 2, "float32") == f32.total
    assert estimate_bytes(program, 4, "float32") > f32.total
    with pytest.raises(UnsupportedDtype):
        estimate(program, 1, "int8")


# ---------------------------------------------------------------------------------------------
# Every example: output sizes (independent formulas) and every kernel on its native geometry


def _expected_output(step: Step) -> Shape:
    """The contract's output size of ``step``, written independently of the resolver."""
    h, w, c = step.input
    kh, kw = step.kernel_hw
    sh, sw = step.stride_hw
    dh, dw = step.dilation_hw
    top, bottom, left, right = step.padding
    same = step.pad_mode == "same"
    if step.kind in ("conv", "maxpool", "avgpool"):
        if not same:
            assert (top, left) == (bottom, right)
        oh = axis_geometry(h, kh, sh, dh, "same" if same else top, step.ceil)[0]
        ow = axis_geometry(w, kw, sw, dw, "same" if same else left, step.ceil)[0]
        return Shape(oh, ow, step.output.c if step.kind == "conv" else c)
    if step.kind == "deconv":
        return Shape(deconv_axis(h, kh, sh, dh, "same" if same else top)[0],
                     deconv_axis(w, kw, sw, dw, "same" if same else left)[0], step.output.c)
    if step.kind in ("fc", "gap"):
        return Shape(1, 1, step.output.c if step.kind == "fc" else c)
    if step.kind == "up":
        return Shape(h * step.factor, w * step.factor, c)
    if step.kind == "concat":
        return Shape(step.operands[0].h, step.operands[0].w, sum(op.c for op in step.operands))
    if step.kind == "slice":
        start, stop = step.channels
        return Shape(h, w, stop - start)
    return step.operands[0]


def _thin(step: Step) -> Step:
    """``step`` with few channels but the same kind, spatial geometry and kind of grouping,
    so its kernel runs the same window arithmetic at a fraction of the cost."""
    def hw(shape: Shape, c: int) -> Shape:
        return Shape(shape.h, shape.w, c)

    if step.kind in ("conv", "deconv"):
        cin, cout, g = step.input.c, step.output.c, step.groups
        if g == 1:
            new_in, new_out, groups = min(cin, 3), min(cout, 2), 1
        elif g == cin:  # depthwise, with its depth multiplier (at most 2)
            groups = new_in = min(cin, 2)
            new_out = new_in * min(cout // cin, 2)
        else:
            groups, new_in, new_out = 2, 4, 2
        return step._replace(input=hw(step.input, new_in), output=hw(step.output, new_out),
                             operands=(hw(step.input, new_in),), groups=groups)
    if step.kind == "fc":
        return step._replace(input=hw(step.input, 2), output=hw(step.output, 3),
                             operands=(hw(step.input, 2),))
    if step.kind == "slice":  # two of four channels, from the start or not
        part = (0, 2) if step.channels[0] == 0 else (2, 4)
        return step._replace(input=hw(step.input, 4), output=hw(step.output, 2),
                             operands=(hw(step.input, 4),), channels=part)
    operands = tuple(hw(op, min(op.c, 2)) for op in step.operands)
    channels = sum(op.c for op in operands) if step.kind == "concat" else operands[0].c
    return step._replace(input=hw(step.input, min(step.input.c, 2)),
                         output=hw(step.output, channels), operands=operands)


def _example_programs() -> list[Program]:
    inputs, errors = collect([str(EXAMPLES)])
    analysis = analyze_inputs(inputs, Options())
    assert errors == [] and analysis.errors == []
    return analysis.programs


def test_every_example_step_has_the_contract_output_size() -> None:
    programs = _example_programs()
    assert len({program.source.name for program in programs if program.source}) == \
        len(list(Path(EXAMPLES).glob("**/*.convcost")))
    for program in programs:
        for step in program.steps:
            assert step.output == _expected_output(step), (program.name, step.path, step.text)


def test_every_example_kernel_runs_on_its_native_geometry() -> None:
    """Each distinct step of every example, at its native spatial size, with the algorithm
    the native step gets, but few channels: the output must have the analysed H x W.

    Running every example whole at native size would build ~230M random weights and take
    seconds; the window arithmetic that could disagree with the analysis depends only on the
    spatial geometry, the algorithm and the grouping, which are all kept.
    """
    rng = np.random.default_rng(0)
    seen: set[tuple[Any, ...]] = set()
    for program in _example_programs():
        for step in program.steps:
            algorithm = choose_algorithm(step)
            thin = _thin(step)
            key = (thin._replace(index=0, path="", text="", inputs=(), out=0, line=0, column=0),
                   algorithm)
            if key in seen:
                continue
            seen.add(key)
            assert kernel_class(thin).check_algorithm(thin, algorithm)
            prepared = prepare_step(thin, "float32", rng, algorithm=algorithm)
            xs = [rng.standard_normal((1, *op), dtype=np.float32) for op in thin.operands]
            y = prepared(*xs)
            assert y.shape == (1, step.output.h, step.output.w, thin.output.c), \
                (program.name, step.path, step.text, algorithm)
    assert len(seen) > 50


@pytest.mark.parametrize("name", ["bottleneck", "unet_tiny"])
def test_small_examples_execute_whole_at_native_size(name: str) -> None:
    inputs, _ = collect([str(EXAMPLES / f"{name}.convcost")])
    for program in analyze_inputs(inputs, Options()).programs:
        executor = Executor(program, "float32", init="zeros")
        assert executor.check_shapes(executor.make_input()).shape == (1, *program.output)


# ---------------------------------------------------------------------------------------------
# bench_models


PEAK = 100.0
SETTINGS = BenchSettings(gemm_peak_gflops=PEAK, max_memory=2**30)


def test_bench_models_measures_every_layer() -> None:
    models = _models("16x16x8 -> 3x3(16) -> relu -> res[1x1(16)] -> maxpool2x2 -> fc(10)",
                     Options(batch=2))
    steps: list[tuple[int, int, str, str]] = []
    run = bench_models(models, BenchSettings(batch=2, gemm_peak_gflops=PEAK),
                       lambda *args: steps.append(args), clock=ticking(0.125))
    assert isinstance(run, BenchRun) and run.errors == () and run.warnings == ()
    assert run.machine.gemm_peak_gflops == PEAK and run.machine.dtype == "float32"
    report = run.models[0].report
    bench = report.bench
    assert isinstance(bench, ModelBench)
    # One tick per timed block of one call: median 0.125 s, 5 repeats.
    assert (bench.median_s, bench.repeats, bench.loops, bench.stable) == (0.125, 5, 1, True)
    assert bench.gflops == report.totals.flops / 0.125 / 1e9
    assert bench.layers == tuple(layer.bench for layer in report.layers)
    conv, relu = report.layers[0].bench, report.layers[1].bench
    assert isinstance(conv, LayerBench) and isinstance(relu, LayerBench)
    assert conv.median_s == 0.125 and conv.algorithm == "im2col-gemm"
    assert conv.efficiency == conv.gflops / PEAK
    assert relu.efficiency is None and relu.algorithm == "elementwise"
    assert [layer.bench.algorithm for layer in report.layers if layer.bench] == \
        ["im2col-gemm", "elementwise", "gemm", "elementwise", "window", "gemm"]
    assert bench.estimate_bytes == estimate_bytes(models[0].program, 2, "float32")
    assert [what for *_, what in steps] == ["preparing weights", "timing the chain",
                                           "timing each layer"]
    assert steps[0][:3] == (1, 1, models[0].report.name)


def test_bench_results_validate_against_the_schema(validate: Callable[[Any], None]) -> None:
    run = bench_models(_models("8x8x4 -> 3x3(4) -> relu"), SETTINGS, clock=ticking())
    validate(document([model.report for model in run.models], [], **run.to_json()))


def test_compare_structure_of_two_benchmarked_models() -> None:
    """What ``compare --bench`` reads: both models measured, predicted speedup from MACs.
    (No assertion on a measured ratio: that depends on the machine.)"""
    inputs, _ = collect([str(EXAMPLES / "bottleneck.convcost")])
    models = analyze_inputs(inputs, Options()).models  # per position: cheap to run
    run = bench_models(models, SETTINGS, clock=ticking())
    direct, bottleneck = (model.report for model in run.models)
    assert direct.bench is not None and bottleneck.bench is not None
    assert direct.totals.macs / bottleneck.totals.macs == pytest.approx(64 / 17)
    assert direct.bench.median_s > 0 and bottleneck.bench.median_s > 0
    assert len(bottleneck.bench.layers) == len(bottleneck.layers)


def test_an_oversized_model_is_refused_and_the_others_still_measured() -> None:
    models = _models("small: 8x8x4 -> 1x1(4)\nhuge: 2048x2048x64 -> 3x3(64)\n"
                     "also: 8x8x4 -> relu")
    run = bench_models(models, BenchSettings(gemm_peak_gflops=PEAK, max_memory=64 * 10**6),
                       clock=ticking())
    assert [model.report.bench is not None for model in run.models] == [True, False, True]
    (error,) = run.errors
    assert isinstance(error, BenchRefused) and error.kind == "bench"
    assert error.message.startswith("benchmark of 'huge' refused: benchmark needs an "
                                    "estimated ")
    assert "above the limit of 61.0 MiB" in error.message
    assert (error.source, error.line, error.column) == ("<arg>", 2, 1)
    assert error.caret_lines()[0] == "  huge: 2048x2048x64 -> 3x3(64)"


def test_a_program_without_source_is_refused_at_the_report() -> None:
    model = _models("8x8x4 -> 1x1(4)")[0]
    model = Analyzed(model.program._replace(source=None), model.report)
    run = bench_models([model], BenchSettings(gemm_peak_gflops=PEAK, max_memory=1),
                       clock=ticking())
    (error,) = run.errors
    assert (error.source, error.line, error.line_text) == ("<arg>", 1, "")


def test_an_unsupported_dtype_refuses_every_model() -> None:
    models = _models("8x8x4 -> 1x1(4)\n8x8x4 -> relu")
    run = bench_models(models, BenchSettings(dtype="bfloat16"), clock=ticking())
    assert run.machine.gemm_peak_gflops == 0.0 and run.machine.dtype == "bfloat16"
    assert len(run.errors) == 2
    assert all(isinstance(error, UnsupportedDtype) and error.kind == "dtype"
               and "refused: cannot benchmark bfloat16" in error.message for error in run.errors)
    assert all(model.report.bench is None for model in run.models)


def test_running_out_of_memory_is_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    def exhausted(*_: Any, **__: Any) -> None:
        raise MemoryError

    monkeypatch.setattr("convcost.bench.executor.Executor.make_input", exhausted)
    run = bench_models(_models("8x8x4 -> relu"), SETTINGS, clock=ticking())
    (error,) = run.errors
    assert isinstance(error, BenchRefused) and "ran out of memory" in error.message


def test_a_shape_bug_is_raised_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Executor, x: Any) -> Any:
        raise InternalError("bug", "<arg>")

    monkeypatch.setattr(Executor, "check_shapes", broken)
    with pytest.raises(InternalError):
        bench_models(_models("8x8x4 -> relu"), SETTINGS, clock=ticking())


def test_ctrl_c_propagates_and_restores_blas_threads() -> None:
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    def threads() -> list[int]:
        return [int(i["num_threads"]) for i in threadpool_info() if i["user_api"] == "blas"]

    before = threads()

    def interrupt(number: int, count: int, name: str, what: str) -> None:
        if what == "timing the chain":
            assert threads() == [1] * len(before)
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        bench_models(_models("8x8x4 -> relu"), BenchSettings(threads=1, gemm_peak_gflops=PEAK),
                     interrupt, clock=ticking())
    assert threads() == before


def test_threads_above_the_cpu_count_are_capped() -> None:
    from convcost.bench.machine import cpu_count

    run = bench_models(_models("8x8x4 -> relu"), BenchSettings(threads=10**4,
                                                               gemm_peak_gflops=PEAK),
                       clock=ticking())
    assert run.machine.threads <= cpu_count()
    assert run.warnings and "10000 BLAS threads asked for" in run.warnings[0]


@pytest.mark.parametrize(("kwargs", "option"), [
    ({"threads": 0}, "--threads"),
    ({"batch": 0}, "--batch"),
    ({"budget_s": 0.0}, "--bench-budget"),
    ({"budget_s": float("inf")}, "--bench-budget"),
    ({"budget_s": float("nan")}, "--bench-budget"),
    ({"max_memory": 0}, "--max-memory"),
    ({"gemm_peak_gflops": float("nan")}, "gemm_peak_gflops"),
])
def test_invalid_settings_are_usage_errors(kwargs: dict[str, Any], option: str) -> None:
    with pytest.raises(UsageError) as info:
        BenchSettings(**kwargs)
    assert info.value.source == option
