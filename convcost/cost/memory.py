"""Memory model: peak live activations by liveness over the program's steps, and traffic.

Peak inference activation memory is the largest number of activation bytes alive at once when
the program runs in order. Each step allocates its output while its inputs are still alive;
a value is freed after the last step that reads it (through any alias), and the program's
result is never freed. So a branch input stays alive until the last branch has read it,
finished branch outputs until their concat, a residual input until the shortcut and the add
have read it, and a gate's input until its multiply. Alias kinds (``id``, ``dropout``,
``droppath`` and channel ``slice`` views) allocate nothing: their output shares their input's
storage. The model's input counts towards the peak.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from convcost.lang.vocab import ALIAS_KINDS
from convcost.model.program import Program, Step


def traffic_elements(step: Step) -> int:
    """Activation elements a step reads and writes (per sample); 0 for aliasing steps."""
    if step.kind in ALIAS_KINDS:
        return 0
    return sum(op.elements for op in step.operands) + step.output.elements


class LiveProfile(NamedTuple):
    """Live activation elements (per sample) right after each step allocated its output."""

    live: tuple[int, ...]
    input_elements: int

    @property
    def peak(self) -> int:
        """The most elements alive at once, the input included."""
        return max(self.input_elements, max(self.live, default=0))

    @property
    def peak_step(self) -> int | None:
        """0-based position of the first step at the peak (None when it is the bare input)."""
        peak = self.peak
        for position, live in enumerate(self.live):
            if live == peak:
                return position
        return None


def storage(program: Program) -> list[int]:
    """Value id -> the id of the value whose buffer it lives in (itself unless an alias)."""
    owner = list(range(program.steps[-1].out + 1 if program.steps else 1))
    for step in program.steps:
        if step.kind in ALIAS_KINDS:
            owner[step.out] = owner[step.inputs[0]]
    return owner


def last_uses(program: Program, owner: list[int] | None = None) -> dict[int, int]:
    """Buffer (see :func:`storage`) -> position of the last step that reads it through any
    alias; a buffer nobody reads dies at the step that writes it, and the result's buffer
    lives past the end (``len(program.steps)``). The one liveness rule: the memory model and
    the executor both free by it."""
    owner = owner if owner is not None else storage(program)
    last: dict[int, int] = {}
    for position, step in enumerate(program.steps):
        if step.kind not in ALIAS_KINDS:
            last[step.out] = position  # written here: dead at once unless read later
        for value in step.inputs:
            last[owner[value]] = position
    last[owner[program.result]] = len(program.steps)  # the result is never freed
    return last


def live_profile(program: Program, size: Callable[[Step], int] | None = None,
                 input_size: int | None = None) -> LiveProfile:
    """Liveness over ``program``'s steps (see the module docstring); ``size`` gives the
    elements a step's output holds (per sample by default)."""
    steps = program.steps
    owner = storage(program)
    last_use = last_uses(program, owner)
    sizes = [0] * len(owner)  # per value id (ids are dense): elements of its buffer
    total = sizes[0] = program.input.elements if input_size is None else input_size
    live: list[int] = []
    append = live.append
    aliases = ALIAS_KINDS
    for position, step in enumerate(steps):  # hot: runs once per step of every analysis
        alias = step.kind in aliases
        out = step.out
        if not alias:
            if size is None:
                h, w, c = step.output
                held = sizes[out] = h * w * c
            else:
                held = sizes[out] = size(step)
            total += held
        append(total)
        inputs = step.inputs
        if len(inputs) == 1:
            buffer = owner[inputs[0]]
            if last_use[buffer] == position:
                total -= sizes[buffer]
        else:
            for buffer in {owner[value] for value in inputs}:
                if last_use[buffer] == position:
                    total -= sizes[buffer]
        if not alias and last_use[out] == position:
            total -= sizes[out]
    return LiveProfile(tuple(live), sizes[0])


def peak_activation_elements(program: Program) -> int:
    """Peak live activation elements of one sample, input included (see module docstring)."""
    return live_profile(program).peak
