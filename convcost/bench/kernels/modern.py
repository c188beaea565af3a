"""Kernels of the newer forms with parameters or structure of their own: prelu, layer scale,
the channel norms and the channel shuffle. (The newer activations, the gate multiply and the
channel slices share the element-wise kernels' classes.)

Like the element-wise kernels each writes one fresh output and works in place on it.
"""

from __future__ import annotations

import numpy as np

from convcost.bench.kernels.base import Array, PreparedStep
from convcost.model.program import Step

#: Norms divide by sqrt(variance + EPS), as PyTorch's defaults do (1e-5).
EPS = 1e-5


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


class Shuffle(PreparedStep):
    """ShuffleNet's channel shuffle: channel ``g*(C/G) + k`` moves to ``k*G + g``."""

    kinds = frozenset({"shuffle"})

    algorithm_name = "copy"

    def run(self, *inputs: Array) -> Array:
        x = inputs[0]
        n, h, w, c = x.shape
        groups = self.step.groups
        out: Array = np.empty_like(x)
        out.reshape(n, h, w, c // groups, groups)[...] = \
            x.reshape(n, h, w, groups, c // groups).swapaxes(3, 4)
        return out
