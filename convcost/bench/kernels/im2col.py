"""``im2col-gemm`` for small ``Kw*Cin`` (stems, few channels): a transposed gather from
channel-major phase planes, then one GEMM per block.

The NHWC gather of :meth:`~convcost.bench.kernels.conv.Conv._im2col` copies runs of
``Kw*Cin`` values (21 floats for a 7x7 stem on RGB): NumPy's copy loop is then bound by its
per-run overhead. Here the input is first copied once into channel-major *phase planes*
``(N, Cin, Ph, Pw, Hq, Wq)`` (padded, rows and columns deinterleaved by the stride, as for
:mod:`~convcost.bench.kernels.depthwise`), so the values of one tap ``(ky, kx, c)`` for a row
of output pixels are one contiguous run of ``Wo`` values. The column matrix is gathered
transposed, ``colT[(ky, kx, c), pixel]``, with one strided copy per pair of tap groups (at
most ``sh*sw`` copies per block), and the GEMM reads it transposed: ``out = colT.T @ W``,
written straight into the NHWC output. With a bias, ``colT`` gets a row of ones and ``W`` the
bias row. The weight rows are permuted once into the gather's tap order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from convcost.bench.kernels.base import (
    Array,
    Block,
    Chunking,
    Phases,
    Shapes,
    chunking,
    phases,
    prefix,
    valid,
)
from convcost.model.program import Step

#: The planes gather is used below this ``Kw*Cin`` (groups 1): above it the NHWC gather's
#: runs are long enough (measured by the prototype: 1.1-2x faster below, ~10% slower above).
PLANES_MAX_RUN = 96
#: Elements of one block's ``colT`` (512 KiB at float32): the GEMM then reads it from L2
#: (measured on the 7x7 stem: 2.40 ms against 2.85 ms with 8 MiB blocks).
BLOCK_ELEMENTS = 1 << 17


def uses_planes(step: Step) -> bool:
    """Whether ``im2col-gemm`` gathers ``step``'s columns from phase planes."""
    return step.groups == 1 and step.kernel_hw[1] * step.input.c < PLANES_MAX_RUN


def axes(step: Step) -> tuple[Phases, Phases]:
    """The row and column :class:`~convcost.bench.kernels.base.Phases` of ``step``."""
    (kh, kw), (sh, sw), (dh, dw) = step.kernel_hw, step.stride_hw, step.dilation_hw
    return (phases(kh, sh, dh, step.output.h), phases(kw, sw, dw, step.output.w))


def plan(step: Step, batch: int) -> tuple[Chunking, Shapes]:
    """Blocks and workspace shapes: the phase planes of the batch and one block's ``colT``."""
    rows, cols = axes(step)
    kh, kw = step.kernel_hw
    cin = step.input.c
    pitch = kh * kw * cin + (1 if step.bias else 0)
    chunk = chunking(batch, step.output.h, step.output.w, pitch, BLOCK_ELEMENTS)
    planes = batch * cin * len(rows.phases) * len(cols.phases) * rows.extent * cols.extent
    block = chunk.samples * min(chunk.rows, step.output.h) * step.output.w
    return chunk, [(planes,), (pitch * block,)]


def weight_rows(step: Step) -> list[int]:
    """Rows of the ``(Kh*Kw*Cin, Cout)`` weight in the gather's order: tap groups row-major
    over (row group, column group), then ``(ky, kx, c)`` within a pair."""
    rows, cols = axes(step)
    kw, cin = step.kernel_hw[1], step.input.c
    order = []
    for *_, kys in rows.groups:
        for *_, kxs in cols.groups:
            order += [(ky * kw + kx) * cin + c for ky in kys for kx in kxs for c in range(cin)]
    return order


#: An index into the input transposed to ``(N, C, H, W)``.
Index = tuple[slice, slice, slice, slice]
#: A block's prepared work: ``(n0, n1, h0, h1, copies into colT)``, copies as (dst, src).
Op = tuple[int, int, int, int, list[tuple[Array, Array]]]


class PlanesIm2col:
    """The planes ``im2col-gemm`` of one step; ``weight`` is ``(Kh*Kw*Cin [+1], Cout)`` in
    :func:`weight_rows` order (plus the bias row). Views are built once per (batch, scratch
    address). Not thread-safe."""

    def __init__(self, step: Step, dtype: np.dtype[Any], weight: Array) -> None:
        self.step = step
        self.dtype = dtype
        self.rows, self.cols = axes(step)
        self._w = weight
        self._key: tuple[int, ...] = ()
        # Zero views (index None) and copies: the copies hold indices into the input, not
        # views of it, so no input outlives its last use (the memory model counts on it).
        self._fill: list[tuple[Array, Index | None]] = []
        self._ops: list[Op] = []

    def __call__(self, x: Array, out: Array, bufs: list[Array], blocks: list[Block]) -> None:
        key = (x.shape[0], *(int(b.ctypes.data) for b in bufs))
        if key != self._key:
            self._fill = self._fill_views(x.shape, bufs[0])
            self._ops = self._build(x.shape[0], bufs, blocks)
            self._key = key
        xt = x.transpose(0, 3, 1, 2)  # (N, C, H, W) view
        for dst, index in self._fill:
            if index is None:
                dst.fill(0)
            else:
                dst[...] = xt[index]
        cout = out.shape[3]
        k = self._w.shape[0]
        for n0, n1, h0, h1, copies in self._ops:
            m = (n1 - n0) * (h1 - h0) * out.shape[2]
            col = prefix(bufs[1], k, m)
            for dst, src in copies:
                dst[...] = src
            if self.step.bias:
                col[k - 1] = 1
            np.matmul(col.T, self._w, out=out[n0:n1, h0:h1].reshape(m, cout))

    def _planes(self, n: int, buf: Array) -> Array:
        cin = self.step.input.c
        rows, cols = self.rows, self.cols
        return prefix(buf, n, cin, len(rows.phases), len(cols.phases), rows.extent,
                      cols.extent)

    def _fill_views(self, shape: tuple[int, ...], buf: Array) -> list[tuple[Array, Index | None]]:
        """``planes[n, c, i, j, hq, wq] = xpad[n, hq*sh + phase_i, wq*sw + phase_j, c]``:
        zero views (index None) and copies from ``x`` transposed to ``(N, C, H, W)``."""
        step = self.step
        n, h, w, _ = shape
        sh, sw = step.stride_hw
        top, left = step.padding[0], step.padding[2]
        planes = self._planes(n, buf)
        views: list[tuple[Array, Index | None]] = []
        for i, py in enumerate(self.rows.phases):
            hlo, hhi = valid(self.rows.extent, h, sh, py - top)
            for j, px in enumerate(self.cols.phases):
                plane = planes[:, :, i, j]
                wlo, whi = valid(self.cols.extent, w, sw, px - left)
                if hlo >= hhi or wlo >= whi:
                    views.append((plane, None))
                    continue
                for part in (plane[:, :, :hlo], plane[:, :, hhi:], plane[:, :, hlo:hhi, :wlo],
                             plane[:, :, hlo:hhi, whi:]):
                    if part.size:
                        views.append((part, None))
                r0, c0 = hlo * sh + py - top, wlo * sw + px - left
                index = (slice(None), slice(None), slice(r0, r0 + (hhi - hlo - 1) * sh + 1, sh),
                         slice(c0, c0 + (whi - wlo - 1) * sw + 1, sw))
                views.append((plane[:, :, hlo:hhi, wlo:whi], index))
        return views

    def _build(self, n: int, bufs: list[Array], blocks: list[Block]) -> list[Op]:
        cin = self.step.input.c
        ow = self.step.output.w
        planes = self._planes(n, bufs[0])
        ns, cs, _, _, hs, ws = planes.strides
        k = self._w.shape[0]
        ops: list[Op] = []
        for n0, n1, h0, h1 in blocks:
            nb, hb = n1 - n0, h1 - h0
            col = prefix(bufs[1], k, nb * hb * ow)
            copies: list[tuple[Array, Array]] = []
            r = 0
            for i, j0h, jsh, kys in self.rows.groups:
                for j, j0w, jsw, kxs in self.cols.groups:
                    size = len(kys) * len(kxs) * cin
                    dst = col[r:r + size].reshape(len(kys), len(kxs), cin, nb, hb, ow)
                    base = planes[n0, 0, i, j, h0 + j0h, j0w:]
                    src = as_strided(base, dst.shape, (jsh * hs, jsw * ws, cs, ns, hs, ws),
                                     writeable=False)
                    copies.append((dst, src))
                    r += size
            ops.append((n0, n1, h0, h1, copies))
        return ops
