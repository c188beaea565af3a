"""Kernels of the newer forms: hard and smooth activations, prelu, channel norms, layer scale,
the gate multiply, channel slices and the channel shuffle.

Like the other element-wise kernels each writes one fresh output and works in place on it.
A ``slice`` returns a view of its input's channels (``torch.chunk`` does the same), so it
allocates nothing, as the memory model says.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from convcost.bench.kernels.base import Array, PreparedStep
from convcost.model.program import Step

#: Norms divide by sqrt(variance + EPS), as PyTorch's defaults do (1e-5).
EPS = 1e-5


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


MODERN_ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "hardsigmoid": _hardsigmoid, "hardswish": _hardswish, "leakyrelu": _leakyrelu,
    "elu": _elu, "mish": _mish,
}


class ModernActivation(PreparedStep):
    """hardswish, hardsigmoid, leakyrelu, elu and mish, element-wise."""

    kinds = frozenset(MODERN_ACTIVATIONS)

    def _derive(self) -> None:
        self._fn = MODERN_ACTIVATIONS[self.step.kind]

    def run(self, *inputs: Array) -> Array:
        return self._fn(inputs[0])


class PerChannel(PreparedStep):
    """``prelu`` (``slope``: ``(C,)``) and layer ``scale`` (``gamma``: ``(C,)``)."""

    kinds = frozenset({"prelu", "scale"})

    @classmethod
    def param_shapes(cls, step: Step) -> dict[str, tuple[int, ...]]:
        return {"slope" if step.kind == "prelu" else "gamma": (step.input.c,)}

    def run(self, *inputs: Array) -> Array:
        x = inputs[0]
        if self.step.kind == "scale":
            out: Array = np.multiply(x, self._params["gamma"])
            return out
        out = np.multiply(x, self._params["slope"])  # the negative side
        np.copyto(out, x, where=x > 0)
        return out


class Norm(PreparedStep):
    """``ln`` (over the channels of each position), ``gn(G)`` (over each group's channels and
    all positions) and ``instancenorm`` (over each channel's positions), with an optional
    affine ``scale`` and ``shift`` of shape ``(C,)``."""

    kinds = frozenset({"ln", "gn", "instancenorm"})

    @classmethod
    def param_shapes(cls, step: Step) -> dict[str, tuple[int, ...]]:
        c = step.input.c
        return {"scale": (c,), "shift": (c,)} if step.affine else {}

    @classmethod
    def temporary_elements(cls, step: Step, batch: int) -> int:
        # the mean and the variance, per normalised group (at most one per element)
        return 2 * batch * step.output.elements

    def run(self, *inputs: Array) -> Array:
        x = inputs[0]
        n, h, w, c = x.shape
        kind = self.step.kind
        axes: tuple[int, ...]
        if kind == "ln":
            view, axes = x, (3,)
        elif kind == "instancenorm":
            view, axes = x, (1, 2)
        else:
            groups = self.step.groups
            view, axes = x.reshape(n, h, w, groups, c // groups), (1, 2, 4)
        mean = view.mean(axis=axes, keepdims=True)
        out: Array = np.subtract(view, mean)
        var = np.multiply(out, out).mean(axis=axes, keepdims=True)
        var += EPS
        np.sqrt(var, out=var)
        out /= var
        out = out.reshape(n, h, w, c)
        if self.step.affine:
            out *= self._params["scale"]
            out += self._params["shift"]
        return out


class Mul(PreparedStep):
    """The gate multiply ``x * g``: ``g`` is 1x1xC (broadcast over H and W) or x's shape."""

    kinds = frozenset({"mul"})

    def run(self, *inputs: Array) -> Array:
        out: Array = np.multiply(inputs[0], inputs[1])
        return out


class Slice(PreparedStep):
    """A channel part of a split: a view, no allocation."""

    kinds = frozenset({"slice"})

    @classmethod
    def choose(cls, step: Step) -> str:
        return "alias"

    def run(self, *inputs: Array) -> Array:
        start, stop = self.step.channels
        out: Array = inputs[0][..., start:stop]
        return out


class Shuffle(PreparedStep):
    """ShuffleNet's channel shuffle: channel ``g*(C/G) + k`` moves to ``k*G + g``."""

    kinds = frozenset({"shuffle"})

    @classmethod
    def choose(cls, step: Step) -> str:
        return "copy"

    def run(self, *inputs: Array) -> Array:
        x = inputs[0]
        n, h, w, c = x.shape
        groups = self.step.groups
        out: Array = np.empty_like(x)
        out.reshape(n, h, w, c // groups, groups)[...] = \
            x.reshape(n, h, w, groups, c // groups).swapaxes(3, 4)
        return out
