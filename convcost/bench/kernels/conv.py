"""Convolutions, transposed convolutions and fully connected steps.

Convolutions are lowered to a few large BLAS matrix products; the algorithm is a pure
function of the step (:meth:`Conv.choose`):

``gemm``
    unpadded 1x1 convolutions (and ``fc``): one ``(N*H*W, Cin) @ (Cin, Cout)`` product that
    reads the input in place at stride 1.
``shifted-gemm``
    KxK, groups 1: the input is expanded along the kernel *width* only, into rows of
    ``Kw*Cin`` values laid out ``(sh, H/sh + halo, N, Wo, Kw*Cin)`` (input rows split by
    vertical stride phase). The rows kernel row ``ky`` needs are then one contiguous slice of
    one phase, so the step is ``Kh`` GEMMs with ``K = Kw*Cin``, accumulated: a copy ``Kh``
    times smaller than im2col's (at stride 2, 0.78-1.03 of im2col's time on 3x3s from
    112x112x16 to 28x28x256, measured alternating at 1 and 2 threads).
``im2col-gemm`` / ``grouped-im2col-gemm``
    any stride, dilation and groups: gather every window into ``(g, N*Ho*Wo, Kh*Kw*Cin/g)``
    and run one GEMM (batched over groups). For groups 1 and a small ``Kw*Cin`` (stems) the
    columns are gathered transposed from stride-phase planes instead
    (:mod:`~convcost.bench.kernels.im2col`): long contiguous copies instead of short ones.
``direct``
    depthwise convolutions: a fused multiply-accumulate over the taps on contiguous NHWC
    rows (:mod:`~convcost.bench.kernels.depthwise`).
``direct-jit``
    depthwise convolutions when numba is installed and on (:mod:`~convcost.bench.kernels.jit`,
    float32 and float64): compiled loops accumulating flat runs of output rows in L1.
``blocked-jit``
    with numba on, groups-1 KxK convolutions with few taps per kernel row (stems, small
    channel counts: :func:`~convcost.bench.kernels.jit.uses_blocked`): a register-blocked
    direct convolution of the zero-padded input (6 pixels by 16 channels per tile at
    float32), no im2col copy (:mod:`~convcost.bench.kernels.jitted_blocked`).
``scatter-gemm``
    transposed convolutions: one GEMM ``x @ W`` to every output tap, then one strided add per
    tap into the (cropped) output.

Large outputs are processed in blocks (:func:`~convcost.bench.kernels.base.chunking`) so
gathered buffers stay cache-sized. Where a kernel gathers its input anyway, the gathered rows
get a column of ones and the weights a bias row, so the GEMM adds the bias instead of a
separate pass. Output sizes and padding come from the step.

Parameter layouts (output channel ``o`` of a grouped step belongs to group ``o // (Cout/g)``):

- conv ``weight``: ``(Kh, Kw, Cin/g, Cout)``; ``bias``: ``(Cout,)``
- deconv ``weight``: ``(Cin, Kh, Kw, Cout/g)``, input channel ``i`` in group ``i // (Cin/g)``
- fc ``weight``: ``(H*W*Cin, N)`` rows in NHWC flattening order; ``bias``: ``(N,)``
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convcost.bench.kernels import depthwise, im2col
from convcost.bench.kernels import jit as jit_kernels
from convcost.bench.kernels.base import (
    ALIGN,
    BIAS_TILE,
    Array,
    BlockKernel,
    Chunking,
    PreparedStep,
    Shapes,
    add_bias,
    aligned_empty,
    chunking,
    fill_padded,
    prefix,
)
from convcost.model.program import Step

#: ``shifted-gemm`` needs a GEMM inner dimension ``Kw*Cin`` at least this large: below it the
#: Kh thin GEMMs run far from peak and one im2col GEMM with ``K = Kh*Kw*Cin`` wins. Its copy
#: is Kh times smaller than im2col's, which pays down to K=48 (measured at 1 thread, the same
#: run alternating: 56x56x32 3x3(32) 0.79 ms against 1.05 ms im2col, 28x28x16 5x5(32) 0.31
#: against 0.37 ms, 112x112x32 3x3(64) 5.0 against 5.6 ms, 56x56x24 3x3(24) 0.55 against
#: 0.73 ms).
SHIFTED_MIN_K = 48
#: ... and at least this many output pixels ``Ho*Wo`` per sample: on small maps (7x7) every
#: GEMM is short, one long-K GEMM amortises better and the im2col copy is cheap anyway
#: (measured: 14x14x256 3x3 87% of peak shifted vs 74% im2col; 7x7x512 64% vs 68%).
SHIFTED_MIN_ROWS = 128

CONV_ALGORITHMS = ("gemm", "shifted-gemm", "im2col-gemm", "grouped-im2col-gemm", "direct",
                   "direct-jit", "blocked-jit")


def gemm_folds_bias(step: Step) -> bool:
    """Whether the 1x1 ``gemm`` copies its input with a ones column to fold the bias into
    the GEMM: worth it when the input is copied anyway (stride) or is narrower than the
    output (the copy then costs less than a bias pass over the output)."""
    return step.bias and (step.stride_hw != (1, 1) or step.output.c > step.input.c)


def pitch_of(k: int, bias: bool) -> int:
    """Row length of a gathered GEMM operand with ``k`` inputs: one more for a column of ones
    when there is a bias, which the GEMM then adds for free."""
    return k + 1 if bias else k


def with_bias_row(w: Array, bias: Array | None) -> Array:
    """``w`` (``..., K, N``) with ``bias`` (``..., N``) appended as row ``K``: the weights for
    an operand whose last column is ones."""
    if bias is None:
        return w
    return np.concatenate([w, bias.reshape(*w.shape[:-2], 1, w.shape[-1])], axis=-2)


def _with_bias(step: Step, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    if step.bias:
        shapes["bias"] = (step.output.c,)
    return shapes


class Conv(PreparedStep):
    """Convolution with one of: gemm, shifted-gemm, (grouped-)im2col-gemm, direct,
    direct-jit, blocked-jit."""

    kinds = frozenset({"conv"})

    @classmethod
    def choose(cls, step: Step, jit: bool = False) -> str:
        kh, kw = step.kernel_hw
        cin, groups = step.input.c, step.groups
        if groups > 1 and groups == cin:
            return "direct-jit" if jit else "direct"
        if jit and jit_kernels.uses_blocked(step):
            return "blocked-jit"
        if groups > 1:
            return "grouped-im2col-gemm"
        if (kh, kw) == (1, 1) and step.padding == (0, 0, 0, 0):
            return "gemm"
        if (kh > 1 and kw * cin >= SHIFTED_MIN_K
                and step.output.h * step.output.w >= SHIFTED_MIN_ROWS):
            return "shifted-gemm"
        return "im2col-gemm"

    @classmethod
    def check_algorithm(cls, step: Step, algorithm: str,
                        dtype: np.dtype[Any] | None = None) -> bool:
        # The compiled kernels need numba, and a dtype it runs.
        compiled = jit_kernels.numba_installed() and (
            dtype is None or dtype.name in jit_kernels.JIT_DTYPES)
        ok = {
            "gemm": step.kernel_hw == (1, 1) and step.padding == (0, 0, 0, 0)
            and step.groups == 1,
            "shifted-gemm": step.groups == 1,
            "im2col-gemm": step.groups == 1,
            "grouped-im2col-gemm": True,
            "direct": step.groups == step.input.c,
            "direct-jit": step.groups == step.input.c and compiled,
            "blocked-jit": step.groups == 1 and compiled,
        }
        return ok.get(algorithm, False)

    @classmethod
    def param_shapes(cls, step: Step) -> dict[str, tuple[int, ...]]:
        kh, kw = step.kernel_hw
        return _with_bias(step, {"weight": (kh, kw, step.input.c // step.groups,
                                            step.output.c)})

    @classmethod
    def weight_elements(cls, step: Step, algorithm: str) -> int:
        total = super().weight_elements(step, algorithm)
        weight = math.prod(cls.param_shapes(step)["weight"])
        folds = algorithm == "gemm" and (step.stride_hw != (1, 1) or gemm_folds_bias(step))
        if folds or algorithm in ("shifted-gemm", "im2col-gemm", "grouped-im2col-gemm"):
            # Regrouped or bias-extended copies of the weight: at most one full copy + a bias
            # row per kernel row.
            total += weight + step.kernel_hw[0] * step.output.c
        if algorithm == "direct":
            total += depthwise.tiled_weight_elements(step)
        if algorithm == "direct-jit":
            total += jit_kernels.weight_elements(step)
        if algorithm == "blocked-jit":
            # The weight's cache-line-aligned copy, whose ALIGN bytes of slack ALIGN elements
            # cover at any itemsize (and a zero bias: the tiles start from it).
            total += weight + ALIGN + (0 if step.bias else step.output.c)
        if step.bias:
            total += BIAS_TILE * step.output.c
        return total

    @classmethod
    def derive_transient_elements(cls, step: Step, algorithm: str) -> int:
        # The regrouped im2col weight, before its bias row is appended (a new array).
        if algorithm in ("im2col-gemm", "grouped-im2col-gemm") and step.bias:
            return math.prod(cls.param_shapes(step)["weight"])
        return 0

    @classmethod
    def plan(cls, step: Step, algorithm: str, batch: int) -> tuple[Chunking, Shapes]:
        n = batch
        h, w, cin = step.input
        oh, ow, cout = step.output
        kh, kw = step.kernel_hw
        dh = step.dilation_hw[0]
        top, bottom, left, right = step.padding
        hp, wp = h + top + bottom, w + left + right
        g = step.groups
        if algorithm == "gemm":
            # A copy of the (subsampled) input, with the bias column when it folds the bias.
            if step.stride_hw != (1, 1) or gemm_folds_bias(step):
                return Chunking(n, oh), [(n * oh * ow * pitch_of(cin, step.bias),)]
            return Chunking(n, oh), []
        if algorithm == "shifted-gemm":
            sh = step.stride_hw[0]
            pitch = pitch_of(kw * cin, step.bias)
            chunk = chunking(n, oh, ow, sh * pitch + 2 * cout)
            block = chunk.samples * chunk.rows * ow
            # Per stride phase, the block's rows plus the extra rows the taps reach.
            phase_rows = chunk.rows + (kh - 1) * dh // sh
            shapes: Shapes = [(sh * chunk.samples * phase_rows * ow * pitch,), (block * cout,)]
            if chunk.samples > 1:
                shapes.append((block * cout,))  # accumulator before the NHWC transpose
            return chunk, shapes
        if algorithm == "direct":
            return depthwise.plan(step, n)
        if algorithm == "direct-jit":
            return jit_kernels.plan(step, n)
        if algorithm == "blocked-jit":
            return jit_kernels.blocked_plan(step, n)
        if algorithm == "im2col-gemm" and im2col.uses_planes(step):
            return im2col.plan(step, n)
        pitch = pitch_of(kh * kw * (cin // g), step.bias)  # (grouped-)im2col-gemm
        chunk = chunking(n, oh, ow, g * pitch + (cout if g > 1 else 0))
        block = chunk.samples * chunk.rows * ow
        shapes = [(g, n, hp, wp, cin // g), (g * block * pitch,)]
        if g > 1:
            shapes.append((g * block * (cout // g),))
        return chunk, shapes

    def _fan_in(self) -> int:
        kh, kw = self.step.kernel_hw
        return kh * kw * (self.step.input.c // self.step.groups)


    def _derive(self) -> None:
        w = self._params["weight"]
        kh, kw, cg, cout = w.shape
        g = self.step.groups
        # A kernel object for the algorithms that have one (called by _delegated).
        self._kernel: BlockKernel | None = None
        # _w2 is the weight in the layout the chosen kernel multiplies by.
        if self.algorithm == "gemm":
            self._w2: Array = w.reshape(cg, cout)
            copies = self.step.stride_hw != (1, 1) or gemm_folds_bias(self.step)
            self._w0 = with_bias_row(self._w2, self._params.get("bias")) if copies else self._w2
        elif self.algorithm == "shifted-gemm":
            self._w2 = w.reshape(kh, kw * cg, cout)
            # Kernel row 0 also multiplies the ones column: it adds the bias.
            self._w0 = with_bias_row(self._w2[0], self._params.get("bias"))
        elif self.algorithm == "direct":
            # Depthwise: output c*m + j reads input channel c, so (Kh, Kw, C, m) is a view.
            self._w2 = w.reshape(kh, kw, g, cout // g)
            self._kernel = depthwise.DepthwisePlan(self.step, self.dtype, self._w2,
                                                   self._params.get("bias"))
        elif self.algorithm == "direct-jit":
            self._w2 = w.reshape(kh, kw, g, cout // g)
            self._kernel = jit_kernels.DepthwiseJit(self.step, self.dtype, self._w2,
                                                    self._params.get("bias"))
        elif self.algorithm == "blocked-jit":
            self._w2 = w
            self._kernel = jit_kernels.BlockedJit(self.step, self.dtype, w,
                                                  self._params.get("bias"))
        elif self.algorithm == "im2col-gemm" and im2col.uses_planes(self.step):
            rows = w.reshape(kh * kw * cg, cout)[im2col.weight_rows(self.step)]
            self._w2 = with_bias_row(rows, self._params.get("bias"))
            self._kernel = im2col.PlanesIm2col(self.step, self.dtype, self._w2)
        else:
            cog = cout // g
            # (Kh, Kw, Cg, g, Cog) -> (g, Kh*Kw*Cg, Cog): rows in the im2col column order.
            regrouped = np.ascontiguousarray(
                w.reshape(kh, kw, cg, g, cog).transpose(3, 0, 1, 2, 4)).reshape(g, -1, cog)
            bias = self._params.get("bias")
            self._w2 = with_bias_row(regrouped, None if bias is None else bias.reshape(g, cog))
        self._b = self._params.get("bias")
        self._b_tiled = None if self._b is None else np.tile(self._b, BIAS_TILE)
        methods: dict[str, Callable[[Array, Array], None]] = {
            "gemm": self._gemm, "shifted-gemm": self._shifted, "im2col-gemm": self._im2col,
            "grouped-im2col-gemm": self._im2col}
        # The kernel objects built above (depthwise, compiled, planes im2col) share one call.
        self._method = self._delegated if self._kernel is not None else methods[self.algorithm]

    def run(self, *inputs: Array) -> Array:
        x = inputs[0]
        oh, ow, cout = self.step.output
        shape = (x.shape[0], oh, ow, cout)
        # blocked-jit's tiles store whole vectors: aligned, none straddles two cache lines.
        out: Array = (aligned_empty(shape, self.dtype) if self.algorithm == "blocked-jit"
                      else np.empty(shape, dtype=self.dtype))
        self._method(x, out)
        return out

    def _gemm(self, x: Array, out: Array) -> None:
        n, _, _, cin = x.shape
        sh, sw = self.step.stride_hw
        flat = out.reshape(-1, out.shape[3])
        shapes = self._planned(n)[1]
        if not shapes:
            # For contiguous x (the usual case) the reshape is a view: the GEMM reads in place.
            np.matmul(x.reshape(-1, cin), self._w2, out=flat)
            if self._b_tiled is not None:
                add_bias(flat, self._b_tiled)
            return
        pitch = pitch_of(cin, self._b is not None)
        (buf,) = self._workspace.take(self.dtype, *shapes)
        xs = buf.reshape(n, out.shape[1], out.shape[2], pitch)
        xs[..., :cin] = x[:, ::sh, ::sw]
        if pitch > cin:
            xs[..., cin] = 1  # the bias column: the GEMM adds the bias
        np.matmul(xs.reshape(-1, pitch), self._w0, out=flat)

    def _shifted(self, x: Array, out: Array) -> None:
        step = self.step
        n, _, _, cin = x.shape
        ow = self.step.output.w
        kh, kw, _, sw, dh, dw, top, left = self.geometry
        cout = step.output.c
        k = kw * cin
        pitch = pitch_of(k, self._b is not None)
        blocks, shapes = self._planned(n)
        bufs = self._workspace.take(self.dtype, *shapes)
        sh = step.stride_hw[0]
        # The stride phase and the row within it of each kernel row's first input row.
        taps = [divmod(ky * dh, sh)[::-1] for ky in range(kh)]
        x = np.ascontiguousarray(x)  # the gather below relies on NHWC strides
        for n0, n1, h0, h1 in blocks:
            nb, hb = n1 - n0, h1 - h0
            hr = hb + (kh - 1) * dh // sh  # input rows per stride phase this block reads
            # rows[p, r, n, wo, kx*Cin + c] = xpad[n, (h0 + r)*sh + p, wo*sw + kx*dw, c]: the
            # Kw taps of an output pixel side by side, input rows split by stride phase, so
            # kernel row ky needs one contiguous slice of phase (ky*dh) % sh from row
            # (ky*dh) // sh: Kh GEMMs with K = Kw*Cin and no im2col over kernel rows.
            rows = prefix(bufs[0], sh, hr, nb, ow, pitch)
            if pitch > k:
                rows[..., k] = 1  # the bias column
            for p in sorted({p for p, _ in taps}):
                gather_rows(rows[p, ..., :k], x[n0:n1], h0 * sh - top + p, left, sw, dw, kw,
                            sh)
            flat = rows.reshape(sh, hr * nb * ow, pitch)
            per_row = nb * ow  # flat rows per input row
            block = hb * per_row
            if nb == 1:
                acc = out[n0, h0:h1].reshape(block, cout)  # contiguous: write in place
            else:
                acc = prefix(bufs[2], block, cout)
            tmp = prefix(bufs[1], block, cout)
            np.matmul(flat[0, :block], self._w0, out=acc)  # kernel row 0 and the bias
            for ky in range(1, kh):
                p, r = taps[ky]
                np.matmul(flat[p, r * per_row:r * per_row + block, :k], self._w2[ky], out=tmp)
                acc += tmp
            if nb > 1:
                out[n0:n1, h0:h1] = acc.reshape(hb, nb, ow, cout).transpose(1, 0, 2, 3)

    def _im2col(self, x: Array, out: Array) -> None:
        step = self.step
        n, h, w, cin = x.shape
        ow = self.step.output.w
        kh, kw, sh, sw, dh, dw, top, left = self.geometry
        g = step.groups
        cg, cout = cin // g, step.output.c
        cog = cout // g
        k = kh * kw * cg
        pitch = pitch_of(k, self._b is not None)
        blocks, shapes = self._planned(n)
        bufs = self._workspace.take(self.dtype, *shapes)
        xpad = bufs[0]
        # Group-major padded copy (g, N, Hp, Wp, Cg): each group's windows are then plain
        # strided views, and for groups == 1 this is just the padded input.
        fill_padded(xpad, x.reshape(n, h, w, g, cg).transpose(3, 0, 1, 2, 4), top, left, 0.0)
        item = xpad.itemsize
        gs, ns, hs, ws, _ = xpad.strides
        for n0, n1, h0, h1 in blocks:
            nb, hb = n1 - n0, h1 - h0
            block = nb * hb * ow
            # col[g, n, h, w, (ky, kx, c)]: every window as one row, plus the bias column.
            col = prefix(bufs[1], g, nb, hb, ow, pitch)
            if pitch > k:
                col[..., k] = 1
            for ky in range(kh):
                src = xpad[:, n0:n1, h0 * sh + ky * dh:]
                base = ky * kw * cg
                if dw == 1:
                    # The Kw taps of a window row are adjacent: one run of Kw*Cg values.
                    col[..., base:base + kw * cg] = as_strided(
                        src, shape=(g, nb, hb, ow, kw * cg),
                        strides=(gs, ns, sh * hs, sw * ws, item), writeable=False)
                else:
                    for kx in range(kw):
                        col[..., base + kx * cg:base + (kx + 1) * cg] = \
                            src[:, :, :(hb - 1) * sh + 1:sh, kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
            cols = col.reshape(g, block, pitch)
            dest = out[n0:n1, h0:h1]  # contiguous in NHWC (whole samples or rows of one)
            if g == 1:
                acc = dest.reshape(block, cout)
                np.matmul(cols[0], self._w2[0], out=acc)
            else:
                res = prefix(bufs[2], g, block, cog)
                np.matmul(cols, self._w2, out=res)
                acc = dest.reshape(block, cout)
                acc.reshape(nb, hb, ow, g, cog)[...] = \
                    res.reshape(g, nb, hb, ow, cog).transpose(1, 2, 3, 0, 4)

    def _delegated(self, x: Array, out: Array) -> None:
        """Run the kernel object ``_derive`` built, with its blocks and scratch."""
        assert self._kernel is not None
        blocks, shapes = self._planned(x.shape[0])
        bufs = self._workspace.take(self.dtype, *shapes) if shapes else []
        self._kernel(x, out, bufs, blocks)


class Deconv(PreparedStep):
    """Transposed convolution: one GEMM to all taps, then a strided add per tap."""

    kinds = frozenset({"deconv"})

    algorithm_name = "scatter-gemm"

    @classmethod
    def param_shapes(cls, step: Step) -> dict[str, tuple[int, ...]]:
        kh, kw = step.kernel_hw
        return _with_bias(step, {"weight": (step.input.c, kh, kw, step.output.c // step.groups)})

    @classmethod
    def weight_elements(cls, step: Step, algorithm: str) -> int:
        tiled = BIAS_TILE * step.output.c if step.bias else 0
        return super().weight_elements(step, algorithm) + tiled

    @classmethod
    def block_height(cls, step: Step) -> int:
        return step.input.h  # the scatter walks input rows

    @classmethod
    def plan(cls, step: Step, algorithm: str, batch: int) -> tuple[Chunking, Shapes]:
        h, w, cin = step.input
        cout, g = step.output.c, step.groups
        kh, kw = step.kernel_hw
        chunk = chunking(batch, h, w, kh * kw * cout + (cin if g > 1 else 0))
        block = chunk.samples * chunk.rows * w
        shapes: Shapes = [(g * block * kh * kw * (cout // g),)]
        if g > 1:
            shapes.append((g * block * (cin // g),))  # group-major copy of the input block
        return chunk, shapes

    def _fan_in(self) -> int:
        # Each output sees about Kh*Kw/s^2 taps of Cin/g channels.
        kh, kw = self.step.kernel_hw
        sh, sw = self.step.stride_hw
        return max(1, (kh // sh) * (kw // sw)) * (self.step.input.c // self.step.groups)


    def _derive(self) -> None:
        w = self._params["weight"]
        cin, kh, kw, cog = w.shape
        g = self.step.groups
        self._w2: Array = w.reshape(g, cin // g, kh * kw * cog)  # a view: no copy
        b = self._params.get("bias")
        self._b_tiled = None if b is None else np.tile(b, BIAS_TILE)

    def run(self, *inputs: Array) -> Array:
        x = inputs[0]
        step = self.step
        n, _, w, cin = x.shape
        oh, ow = step.output.h, step.output.w
        kh, kw, sh, sw, dh, dw, top, left = self.geometry
        g = step.groups
        cg, cout = cin // g, step.output.c
        cog = cout // g
        blocks, shapes = self._planned(n)
        bufs = self._workspace.take(self.dtype, *shapes)
        # Zeros: outputs no tap reaches (negative crops append zeros) must read zero.
        out: Array = np.zeros((n, oh, ow, g, cog), dtype=self.dtype)
        for n0, n1, h0, h1 in blocks:
            nb, hb = n1 - n0, h1 - h0
            m = nb * hb * w
            block = x[n0:n1, h0:h1]
            if g == 1:
                xg = block.reshape(1, m, cin)
            else:
                xg = prefix(bufs[1], g, m, cg)
                xg[...] = block.reshape(m, g, cg).transpose(1, 0, 2)
            taps = prefix(bufs[0], g, m, kh * kw * cog)
            np.matmul(xg, self._w2, out=taps)
            # taps7[n, h, w, ky, kx, g, :]: input pixel (h, w)'s contribution through (ky, kx).
            taps7 = taps.reshape(g, nb, hb, w, kh, kw, cog).transpose(1, 2, 3, 4, 5, 0, 6)
            dest = out[n0:n1]
            for ky in range(kh):
                # Input row h0 + i lands on output row (h0 + i)*sh + ky*dh - top.
                hlo, hhi, o_h = tap_range(hb, oh, sh, h0 * sh + ky * dh - top)
                if hlo >= hhi:
                    continue
                for kx in range(kw):
                    wlo, whi, o_w = tap_range(w, ow, sw, kx * dw - left)
                    if wlo >= whi:
                        continue
                    dest[:, o_h:o_h + (hhi - hlo - 1) * sh + 1:sh,
                         o_w:o_w + (whi - wlo - 1) * sw + 1:sw] += \
                        taps7[:, hlo:hhi, wlo:whi, ky, kx]
        result = out.reshape(n, oh, ow, cout)
        if self._b_tiled is not None:
            add_bias(result, self._b_tiled)
        return result


def gather_rows(rows: Array, x: Array, row0: int, left: int, sw: int, dw: int,
                 kw: int, sh: int = 1) -> None:
    """``rows[r, n, wo, kx*C + c] = x[n, row0 + r*sh, wo*sw + kx*dw - left, c]``, zero
    outside ``x``: the width-expanded rows of ``shifted-gemm`` (every ``sh``-th input row)
    read straight from the unpadded input (a padded copy would be one more pass over
    memory)."""
    hr, _, ow, _ = rows.shape
    _, h, w, c = x.shape
    r_lo = max(0, -(row0 // sh))  # the first r with row0 + r*sh >= 0
    r_hi = max(r_lo, min(hr, (h - 1 - row0) // sh + 1))
    if r_lo >= r_hi:
        rows[...] = 0
        return
    rows[:r_lo] = 0
    rows[r_hi:] = 0
    # (rows, n, W, C) view of the rows read
    src = x[:, row0 + r_lo * sh:row0 + (r_hi - 1) * sh + 1:sh].transpose(1, 0, 2, 3)
    dst = rows[r_lo:r_hi]
    # Interior columns, where every tap is inside x: with dilation 1 the Kw taps are Kw
    # adjacent pixels, one contiguous run of Kw*C values, so one strided copy does them all.
    a = min(ow, -(-left // sw))
    b = max(a, min(ow, (w - 1 + left - (kw - 1)) // sw + 1)) if dw == 1 else a
    if b > a:
        item = x.itemsize
        start = src[:, :, a * sw - left:]
        dst[:, :, a:b] = as_strided(start, shape=(r_hi - r_lo, src.shape[1], b - a, kw * c),
                                    strides=(start.strides[0], start.strides[1], sw * c * item,
                                             item), writeable=False)
    # Border columns (all columns when dilated): tap by tap, zero where it falls outside x.
    for c0, c1 in ((0, a), (b, ow)):
        if c0 >= c1:
            continue
        for kx in range(kw):
            lo, hi, iw = tap_range(c1 - c0, w, sw, c0 * sw + kx * dw - left)
            part = dst[:, :, c0:c1, kx * c:(kx + 1) * c]
            part[:, :, :lo] = 0
            part[:, :, hi:] = 0
            if hi > lo:
                part[:, :, lo:hi] = src[:, :, iw:iw + (hi - lo - 1) * sw + 1:sw]


def tap_range(size: int, out_size: int, stride: int, offset: int) -> tuple[int, int, int]:
    """Inputs ``i`` in ``[lo, hi)`` with ``0 <= i*stride + offset < out_size``, and the output
    index of ``lo`` (a transposed convolution's scatter along one axis)."""
    lo = max(0, -(offset // stride))  # ceil(-offset / stride)
    hi = min(size, (out_size - 1 - offset) // stride + 1)
    hi = max(hi, lo)
    return lo, hi, lo * stride + offset


class Fc(PreparedStep):
    """Fully connected: one GEMM over the NHWC-flattened input."""

    kinds = frozenset({"fc"})

    algorithm_name = "gemm"

    @classmethod
    def param_shapes(cls, step: Step) -> dict[str, tuple[int, ...]]:
        return _with_bias(step, {"weight": (step.input.elements, step.output.c)})

    def _derive(self) -> None:
        self._w = self._params["weight"]
        self._b = self._params.get("bias")

    def run(self, *inputs: Array) -> Array:
        x = inputs[0]
        n = x.shape[0]
        out: Array = np.matmul(x.reshape(n, -1), self._w)
        if self._b is not None:
            out += self._b
        return out.reshape(n, 1, 1, -1)
