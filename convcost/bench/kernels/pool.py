"""Max and average pools (``window``) and global average pooling (``reduce``).

A pool reads a padded copy of its input from the workspace: ``-inf`` padding for max pools,
zeros for average pools, large enough for every window, including ceil-mode windows that run
past the declared padding (:func:`~convcost.model.geometry.window_extent`). Output sizes and
padding come from the step.

Average pools divide by the number of pixels a window covers: real pixels only with ``same``
padding (TensorFlow), real and explicit padding pixels otherwise (PyTorch's
``count_include_pad=True``), never what lies beyond the padded input (ceil mode).
"""

from __future__ import annotations

import numpy as np

from convcost.bench.kernels.base import (
    Array,
    Chunking,
    PreparedStep,
    Shapes,
    fill_padded,
)
from convcost.model.geometry import window_extent
from convcost.model.program import Step


def padded_extent(step: Step) -> tuple[int, int]:
    """``(Hp, Wp)`` of the padded buffer a pool reads."""
    top, _, left, _ = step.padding
    kh, kw = step.kernel_hw
    sh, sw = step.stride_hw
    return (window_extent(step.input.h, step.output.h, kh, sh, top),
            window_extent(step.input.w, step.output.w, kw, sw, left))


class Pool(PreparedStep):
    """Max or average pooling: a max/sum over kernel offsets of strided window views."""

    kinds = frozenset({"maxpool", "avgpool"})

    algorithm_name = "window"

    @classmethod
    def weight_elements(cls, step: Step, algorithm: str) -> int:
        # An average pool holds its reciprocal divisors, one per output pixel.
        return step.output.h * step.output.w if step.kind == "avgpool" else 0

    @classmethod
    def plan(cls, step: Step, algorithm: str, batch: int) -> tuple[Chunking, Shapes]:
        hp, wp = padded_extent(step)
        return Chunking(batch, step.output.h), [(batch, hp, wp, step.input.c)]

    def _derive(self) -> None:
        step = self.step
        if step.kind != "avgpool":
            return
        kh, kw = step.kernel_hw
        sh, sw = step.stride_hw
        top, bottom, left, right = step.padding
        same = step.pad_mode == "same"
        counts = []
        for out, k, s, before, after, size in ((step.output.h, kh, sh, top, bottom, step.input.h),
                                               (step.output.w, kw, sw, left, right, step.input.w)):
            start = np.arange(out) * s - before
            if same:  # TensorFlow: only real pixels count
                count = np.minimum(start + k, size) - np.maximum(start, 0)
            else:  # PyTorch count_include_pad: padding counts, beyond the padded input not
                count = np.minimum(start + k, size + after) - start
            counts.append(count)
        divisor = counts[0][:, None] * counts[1][None, :]
        self._inv = (1.0 / divisor).astype(self.dtype)[:, :, None]

    def run(self, *inputs: Array) -> Array:
        x = inputs[0]
        step = self.step
        n = x.shape[0]
        oh, ow = step.output.h, step.output.w
        kh, kw, sh, sw, _, _, top, left = self.geometry
        is_max = step.kind == "maxpool"
        (xpad,) = self._workspace.take(self.dtype, *self._planned(n)[1])
        fill_padded(xpad, x, top, left, -np.inf if is_max else 0.0)
        out: Array = np.empty((n, oh, ow, x.shape[3]), dtype=self.dtype)
        combine = np.maximum if is_max else np.add
        for ky in range(kh):
            for kx in range(kw):
                win = xpad[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw, :]
                if ky == 0 and kx == 0:
                    out[...] = win
                else:
                    combine(out, win, out=out)
        if not is_max:
            out *= self._inv
        return out


class Gap(PreparedStep):
    """Global average pooling: the mean over H and W."""

    kinds = frozenset({"gap"})

    algorithm_name = "reduce"

    @classmethod
    def temporary_elements(cls, step: Step, batch: int) -> int:
        # NumPy accumulates a float16 mean in float32: an output-sized float32 (2 float16s).
        return 2 * batch * step.output.elements

    def run(self, *inputs: Array) -> Array:
        out: Array = inputs[0].mean(axis=(1, 2), keepdims=True)
        return out
