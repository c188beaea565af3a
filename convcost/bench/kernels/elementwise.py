"""Steps without geometry: activations, inference batch norm, nearest upsampling, concat,
add, and the aliasing kinds.

Each kernel writes into one fresh output and works in place on it, so no call allocates more
than its output (softmax adds two per-pixel reductions). ``id`` and ``dropout`` (inference:
identity) return their input itself, as the memory model says: they allocate nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from convcost.bench.kernels.base import Array, PreparedStep
from convcost.lang.vocab import ALIAS_KINDS
from convcost.model.program import Step


def _relu(x: Array) -> Array:
    out: Array = np.maximum(x, 0)
    return out


def _relu6(x: Array) -> Array:
    out: Array = np.clip(x, 0, 6)
    return out


def _tanh(x: Array) -> Array:
    out: Array = np.tanh(x)
    return out


def _sigmoid(x: Array) -> Array:
    # 0.5*(1 + tanh(x/2)): no overflow warnings for large |x|, unlike 1/(1+exp(-x)).
    out: Array = np.multiply(x, 0.5)
    np.tanh(out, out=out)
    out += 1
    out *= 0.5
    return out


def _silu(x: Array) -> Array:
    out = _sigmoid(x)
    out *= x
    return out


def _gelu(x: Array) -> Array:
    # tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    out: Array = np.multiply(x, x)
    out *= 0.044715
    out += 1
    out *= x
    out *= math.sqrt(2 / math.pi)
    np.tanh(out, out=out)
    out += 1
    out *= x
    out *= 0.5
    return out


def _softmax(x: Array) -> Array:
    # Over channels; subtracting the max keeps exp from overflowing.
    out: Array = np.subtract(x, x.max(axis=3, keepdims=True))
    np.exp(out, out=out)
    out /= out.sum(axis=3, keepdims=True)
    return out


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": _relu, "relu6": _relu6, "tanh": _tanh, "sigmoid": _sigmoid, "silu": _silu,
    "gelu": _gelu, "softmax": _softmax,
}
#: The newer activations (and prelu, which has params) run in kernels/modern.py.
assert set(ACTIVATIONS) == {"relu", "relu6", "tanh", "sigmoid", "silu", "gelu", "softmax"}


class Activation(PreparedStep):
    """An element-wise activation (softmax: over channels)."""

    kinds = frozenset(ACTIVATIONS)

    def _derive(self) -> None:
        self._fn = ACTIVATIONS[self.step.kind]

    @classmethod
    def temporary_elements(cls, step: Step, batch: int) -> int:
        # softmax's per-pixel max, then its per-pixel sum.
        return batch * step.output.h * step.output.w if step.kind == "softmax" else 0

    def run(self, *inputs: Array) -> Array:
        return self._fn(inputs[0])


class BatchNorm(PreparedStep):
    """Inference batch norm ``y = x*scale + shift``; ``scale``, ``shift``: ``(C,)``."""

    kinds = frozenset({"bn"})

    @classmethod
    def param_shapes(cls, step: Step) -> dict[str, tuple[int, ...]]:
        return {"scale": (step.input.c,), "shift": (step.input.c,)}

    def run(self, *inputs: Array) -> Array:
        out: Array = np.multiply(inputs[0], self._params["scale"])
        out += self._params["shift"]
        return out


class Up(PreparedStep):
    """Nearest-neighbour upsampling by ``step.factor``: one broadcasting copy."""

    kinds = frozenset({"up"})

    @classmethod
    def choose(cls, step: Step) -> str:
        return "copy"

    def run(self, *inputs: Array) -> Array:
        x = inputs[0]
        n, h, w, c = x.shape
        f = self.step.factor
        out: Array = np.empty((n, h, f, w, f, c), dtype=self.dtype)
        out[...] = x[:, :, None, :, None, :]
        return out.reshape(n, h * f, w * f, c)


class Concat(PreparedStep):
    """Channel concatenation of the branch outputs."""

    kinds = frozenset({"concat"})

    @classmethod
    def choose(cls, step: Step) -> str:
        return "copy"

    def run(self, *inputs: Array) -> Array:
        out: Array = np.concatenate(inputs, axis=3)
        return out


class Add(PreparedStep):
    """Residual add of the body and the shortcut."""

    kinds = frozenset({"add"})

    def run(self, *inputs: Array) -> Array:
        out: Array = np.add(inputs[0], inputs[1])
        return out


class Alias(PreparedStep):
    """``id`` and inference ``dropout``: the input itself, no allocation."""

    kinds = ALIAS_KINDS - {"slice"}  # a slice is a view of some channels: kernels/modern.py

    @classmethod
    def choose(cls, step: Step) -> str:
        return "alias"

    def run(self, *inputs: Array) -> Array:
        return inputs[0]
