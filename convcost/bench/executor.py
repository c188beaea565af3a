"""Running a :class:`~convcost.model.program.Program` with the NumPy kernels, and what that
costs in memory.

:class:`Executor` prepares every step (weights allocated, algorithm fixed, one scratch
workspace shared by all steps and sized up front) and runs the steps in program order over a
table of values. A value is dropped right after the last step that reads its storage, as a
framework would (the liveness of :mod:`convcost.cost.memory`: ``id`` and ``dropout`` return
their input, so an alias and its source share one buffer and are freed together); the result
is returned.

:func:`estimate` says, before anything is allocated, what running a program really takes:
the weights (with the copies kernels derive from them), the workspace, the activations held
at once by that liveness (the caller's input kept all along), and what preparation allocates
for a moment (float16 weights are drawn in float32, some weights are regrouped through an
intermediate copy).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from convcost.bench.kernels import (
    Array,
    PreparedStep,
    Workspace,
    choose_algorithm,
    kernel_class,
    make_input,
    numpy_dtype,
    prepare_step,
    prepare_transient_bytes,
    weight_bytes,
    workspace_bytes,
)
from convcost.cost.memory import last_uses, live_profile, storage
from convcost.errors import InternalError, Span
from convcost.model.program import Program, Step

__all__ = ["Executor", "MemoryEstimate", "estimate", "estimate_bytes"]


def _frees(program: Program) -> list[tuple[int, ...]]:
    """Position -> the value ids to drop after that step: every value whose storage is read
    for the last time there (a value never read is dropped at once); never the result's."""
    owner = storage(program)
    last = last_uses(program, owner)
    frees: list[list[int]] = [[] for _ in program.steps]
    for value in (0, *(step.out for step in program.steps)):
        position = last.get(owner[value], len(program.steps))  # an unread input: kept
        if position < len(program.steps):
            frees[position].append(value)
    return [tuple(values) for values in frees]


class Executor:
    """A program prepared for NumPy at ``dtype`` and ``batch``: ``run(x)`` is a forward pass.

    Weights are random from ``rng`` (or ``numpy.random.default_rng(seed)``), or zeros with
    ``init="zeros"`` (nothing drawn: for shape checks of large models). Raises
    :class:`~convcost.errors.UnsupportedDtype` for a dtype NumPy cannot execute. Not
    thread-safe.
    """

    def __init__(self, program: Program, dtype: str = "float32", batch: int = 1, *,
                 seed: int = 0, rng: np.random.Generator | None = None,
                 init: str = "random") -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        if init not in ("random", "zeros"):
            raise ValueError(f"init must be 'random' or 'zeros', got {init!r}")
        self.program = program
        self.dtype = numpy_dtype(dtype)
        self.batch = batch
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.workspace = Workspace()
        weights = None if init == "zeros" else self.rng
        self.kernels: tuple[PreparedStep, ...] = tuple(
            prepare_step(step, self.dtype, weights, self.workspace) for step in program.steps)
        # Sized once for the batch: no call grows it, and the estimate counts exactly this.
        self.workspace.reserve(max((workspace_bytes(k.step, k.algorithm, batch,
                                                    self.dtype.itemsize)
                                    for k in self.kernels), default=0))
        self._frees = _frees(program)
        self._calls = tuple((kernel.run, step.inputs, step.out, frees)
                            for kernel, step, frees in zip(self.kernels, program.steps,
                                                           self._frees))

    def make_input(self) -> Array:
        """A standard-normal input batch for the program, from the executor's generator."""
        return make_input(self.program.input, self.batch, self.dtype, self.rng)

    def _check_input(self, x: Array) -> None:
        want = (self.batch, *self.program.input)
        if tuple(x.shape) != want or x.dtype != self.dtype:
            raise ValueError(f"program {self.program.name!r} runs on {self.dtype} inputs of "
                             f"shape {want}, got {x.dtype} {tuple(x.shape)}")

    def run(self, x: Array, times: list[float] | None = None,
            clock: Callable[[], float] = time.perf_counter) -> Array:
        """Forward pass on ``x``; with ``times`` (one slot per step), each step's seconds by
        ``clock`` are written into it."""
        values: dict[int, Any] = {0: x}
        if times is None:
            for run, inputs, out, frees in self._calls:
                values[out] = run(*[values[value] for value in inputs])
                for value in frees:
                    del values[value]
        else:
            for number, (run, inputs, out, frees) in enumerate(self._calls):
                args = [values[value] for value in inputs]
                start = clock()
                values[out] = run(*args)
                times[number] = clock() - start
                del args
                for value in frees:
                    del values[value]
        result: Array = values[self.program.result]
        return result

    def check_shapes(self, x: Array) -> Array:
        """Run once, comparing every step's output with the analysed shape and dtype;
        :class:`~convcost.errors.InternalError` (located at the step) on any difference.
        Returns the result."""
        self._check_input(x)
        values: dict[int, Any] = {0: x}
        for step, (run, inputs, out, frees) in zip(self.program.steps, self._calls):
            try:
                y = run(*[values[value] for value in inputs])
            except (ValueError, IndexError, TypeError) as error:
                raise self._mismatch(step, f"step {step.path} '{step.text}' failed on its "
                                           f"analysed geometry ({step.input} -> {step.output}): "
                                           f"{error}; this is a bug in convcost") from error
            expected = (self.batch, *step.output)
            if tuple(y.shape) != expected or y.dtype != self.dtype:
                raise self._mismatch(step, f"step {step.path} '{step.text}' produced "
                                           f"{y.dtype} {tuple(y.shape)}, but the analysis says "
                                           f"{self.dtype} {expected}; this is a bug in convcost")
            values[out] = y
            del y
            for value in frees:
                del values[value]
        result: Array = values[self.program.result]
        return result

    def _mismatch(self, step: Step, message: str) -> InternalError:
        source = self.program.source
        if source is not None and step.line:
            return InternalError.at(source, Span(step.line, max(step.column, 1),
                                                 len(step.text)), message)
        return InternalError(message, source.name if source is not None else self.program.name,
                             step.line, step.column)


class MemoryEstimate(NamedTuple):
    """Bytes an :class:`Executor` run takes, by what holds them."""

    #: Weights held by the prepared steps, derived copies included.
    weights: int
    #: The largest allocation preparing one step makes for a moment (before any activation).
    prepare_transient: int
    #: The shared scratch workspace (its largest step's need).
    workspace: int
    #: The most activation bytes alive at once: liveness over the steps, the caller's input
    #: held throughout, plus the step's own short-lived temporaries.
    activations: int
    #: Making the input: float16 inputs are drawn in float32 first.
    input_transient: int

    @property
    def total(self) -> int:
        """Peak bytes: weights, plus the worst of preparing and running."""
        running = self.workspace + max(self.activations, self.input_transient)
        return self.weights + max(self.prepare_transient, running)


def estimate(program: Program, batch: int, dtype: str) -> MemoryEstimate:
    """What running ``program`` at ``batch`` and ``dtype`` with an :class:`Executor` allocates,
    computed without allocating anything (see :class:`MemoryEstimate`)."""
    itemsize = numpy_dtype(dtype).itemsize
    steps = program.steps
    weights = sum(weight_bytes(step, dtype) for step in steps)
    transient = max((prepare_transient_bytes(step, dtype) for step in steps), default=0)
    workspace = max((workspace_bytes(step, choose_algorithm(step, dtype), batch, itemsize)
                     for step in steps), default=0)
    input_elements = program.input.elements * batch
    profile = live_profile(program, lambda step: step.output.elements * batch, input_elements)
    owner = storage(program)
    input_last = max((position for position, step in enumerate(steps)
                      if any(owner[value] == 0 for value in step.inputs)), default=-1)
    if owner[program.result] == 0:
        input_last = len(steps)  # the result aliases the input: counted all along already
    peak = input_elements
    for position, (step, live) in enumerate(zip(steps, profile.live)):
        held = input_elements if position > input_last else 0  # freed by liveness, not by us
        peak = max(peak, live + held + kernel_class(step).temporary_elements(step, batch))
    draw = 4 * input_elements if itemsize == 2 else 0
    return MemoryEstimate(weights=weights, prepare_transient=transient, workspace=workspace,
                          activations=peak * itemsize,
                          input_transient=draw + input_elements * itemsize)


def estimate_bytes(program: Program, batch: int, dtype: str) -> int:
    """Peak bytes of running ``program`` at ``batch`` and ``dtype`` (see :func:`estimate`)."""
    return estimate(program, batch, dtype).total
