"""Steps without geometry: activations, inference batch norm, nearest upsampling, concat,
the residual add and gate multiply, and the aliasing kinds.

Each kernel writes into one fresh output and works in place on it, so no call allocates more
than its output (softmax adds two per-pixel reductions). ``id``, ``dropout`` and ``droppath``
(inference: identity) return their input itself, and a split's ``slice`` a view of its
channels (as ``torch.chunk`` gives), as the memory model says: they allocate nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from convcost.bench.kernels.base import Array, PreparedStep
from convcost.lang.vocab import ACTIVATION_KINDS, ALIAS_KINDS
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


def _hardsigmoid(x: Array) -> Array:
    # relu6(x + 3) / 6
    out: Array = np.add(x, 3.0)
    np.clip(out, 0.0, 6.0, out=out)
    out *= 1.0 / 6.0
    return out


def _hardswish(x: Array) -> Array:
    out = _hardsigmoid(x)
    out *= x
    return out


def _leakyrelu(x: Array) -> Array:
    # PyTorch's default negative slope; the written slope changes no count.
    out: Array = np.multiply(x, 0.01)
    np.maximum(out, x, out=out)
    return out


def _elu(x: Array) -> Array:
    out: Array = np.minimum(x, 0.0)
    np.expm1(out, out=out)
    np.maximum(out, x, out=out)  # x > 0: x; else expm1(x) (which is > x there)
    return out


def _mish(x: Array) -> Array:
    # x * tanh(softplus(x)); softplus via logaddexp(0, x) does not overflow.
    out: Array = np.logaddexp(0.0, x)
    np.tanh(out, out=out)
    out *= x
    return out


ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "relu": _relu, "relu6": _relu6, "tanh": _tanh, "sigmoid": _sigmoid, "silu": _silu,
    "gelu": _gelu, "softmax": _softmax, "hardsigmoid": _hardsigmoid, "hardswish": _hardswish,
    "leakyrelu": _leakyrelu, "elu": _elu, "mish": _mish,
}
#: prelu has a learnable slope per channel: kernels/modern.py.
assert set(ACTIVATIONS) == ACTIVATION_KINDS - {"prelu"}


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

    algorithm_name = "copy"

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

    algorithm_name = "copy"

    def run(self, *inputs: Array) -> Array:
        out: Array = np.concatenate(inputs, axis=3)
        return out


#: The two-input element-wise steps.
_BINARY = {"add": np.add, "mul": np.multiply}


class Binary(PreparedStep):
    """The residual add of body and shortcut, and the gate multiply ``x * g`` (``g`` is
    1x1xC, broadcast over H and W, or x's own shape)."""

    kinds = frozenset(_BINARY)

    def _derive(self) -> None:
        self._ufunc = _BINARY[self.step.kind]

    def run(self, *inputs: Array) -> Array:
        out: Array = self._ufunc(inputs[0], inputs[1])
        return out


class Alias(PreparedStep):
    """``id``, inference ``dropout`` and ``droppath``: the input itself; a split's ``slice``:
    a view of its channels. No allocation."""

    kinds = ALIAS_KINDS

    algorithm_name = "alias"

    def _derive(self) -> None:
        start, stop = self.step.channels
        self._part = slice(start, stop) if self.step.kind == "slice" else None

    def run(self, *inputs: Array) -> Array:
        if self._part is None:
            return inputs[0]
        out: Array = inputs[0][..., self._part]
        return out
