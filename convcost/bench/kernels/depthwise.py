"""The depthwise convolution kernel (``direct``): fused multiply-accumulate over the taps.

Output channel ``c*m + j`` reads input channel ``c`` (multiplier ``m``). Per block of output
rows the input rows the block needs are copied once into scratch that is zero-padded,
column-deinterleaved by the horizontal stride (``sw`` *phase planes*, so every tap reads
contiguous memory even at stride 2) and channel-repeated ``m`` times. Tap ``(ky, kx)`` then
reads, for output row ``y``, the contiguous run of ``Wo*C*m`` values starting at plane
``kx*dw % sw``, row ``y*sh + ky*dh``, column ``kx*dw // sw``: the taps of one phase form one
strided view ``(Kh, taps, N, rows, Wo*C*m)``, and one ``einsum`` per phase does the whole
multiply-accumulate in a single fused pass (NumPy's ``sum_of_products`` loop, ``out += x*w``,
about 1.7x cheaper per tap than ``multiply`` + ``add``). The weights are tiled along the
output width at preparation, so the innermost loop runs over a whole output row.

Blocks are sized (:data:`BLOCK_ELEMENTS`) so the scratch rows and the output block stay in
L2. With ``--threads N`` (N BLAS threads) the blocks are split into up to N *lanes* with their
own scratch, run on N Python threads: ``einsum`` releases the GIL, and torch, the yardstick,
runs its depthwise kernels on all its threads too.

Measured with ``benchmarks/kernels_vs_torch.py``: NumPy has no faster fused loop (a per-tap
``multiply``/``add`` pair, ``order='C'`` einsum iteration, one-row blocks and Toeplitz or
block-diagonal GEMM forms were all slower on the dev VM). The ``einsum`` loop does about 5
multiply-adds per nanosecond, which leaves the layers about 2-4x slower than torch's
channels-last kernel (oneDNN's JIT code) at one thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from convcost.bench.kernels.base import Array, Block, Chunking, Phases, Shapes, phases, valid
from convcost.bench.machine import cpu_count
from convcost.model.program import Step

try:  # the C function behind np.einsum: skips ~1 us of Python argument handling per call
    from numpy._core.multiarray import c_einsum as _c_einsum
    _einsum: Callable[..., Any] = _c_einsum
except ImportError:  # pragma: no cover - NumPy < 2
    _einsum = np.einsum

#: Target elements of one block's working set (scratch rows + output block): 512 KiB at
#: float32, a quarter of this VM's 2 MiB L2, leaving room for the tiled weights.
BLOCK_ELEMENTS = 1 << 17
#: Multiply-adds (output elements x taps) from which a one-block step is split in two so that
#: two threads can share it.
PARALLEL_MIN_WORK = 1 << 18


def _find_blas() -> Any:
    """threadpoolctl's controller of NumPy's BLAS, or None."""
    try:
        found = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:  # noqa: BLE001 - any failure: run on one thread
        return None
    return found[0] if found else None


# Found once, at import (about 1 ms and 25 KiB of Python objects), so that neither lands in
# the middle of a measured run; threadpoolctl itself is ~250 KiB of modules.
_blas = _find_blas()


def blas_thread_count() -> int:
    """The BLAS threads now in force (``--threads``): the depthwise kernel runs its blocks on
    as many Python threads (``einsum`` releases the GIL), as torch runs its own on its
    threads. About 1 us per call."""
    return int(_blas.get_num_threads()) if _blas is not None else 1


_pool: ThreadPoolExecutor | None = None


def worker_pool() -> ThreadPoolExecutor:
    """The shared pool that runs the extra lanes (created on first use)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, cpu_count() - 1),
                                   thread_name_prefix="convcost-depthwise")
    return _pool


def run_lanes(lanes: Sequence[Callable[[], None]]) -> None:
    """Run ``lanes[0]`` on this thread and the others on :func:`worker_pool`, returning once
    all are done (a worker's exception is raised here)."""
    futures = [worker_pool().submit(lane) for lane in lanes[1:]]
    try:
        lanes[0]()
    finally:
        for future in futures:
            future.result()


def layout(step: Step) -> Phases:
    """The column phase planes and tap groups of depthwise ``step``."""
    return phases(step.kernel_hw[1], step.stride_hw[1], step.dilation_hw[1], step.output.w)


def plan(step: Step, batch: int) -> tuple[Chunking, Shapes]:
    """Blocks and workspace shapes of a depthwise ``step`` on ``batch`` samples: the phase
    planes of one block's input rows, plus an accumulator when taps span several planes."""
    oh, ow, cm = step.output
    kh = step.kernel_hw[0]
    sh, dh = step.stride_hw[0], step.dilation_hw[0]
    lay = layout(step)
    per_row = (len(lay.phases) * lay.extent * sh + ow) * cm
    rows = max(1, BLOCK_ELEMENTS // max(1, per_row))
    if rows >= oh:
        samples = max(1, min(batch, rows // oh))
        count = -(-batch // samples)
        chunk = Chunking(-(-batch // count), oh)
    else:
        count = -(-oh // rows)
        chunk = Chunking(1, -(-oh // count))
    cpus = cpu_count()
    if cpus > 1 and len(chunk.blocks(batch, oh)) == 1 and oh > 1 \
            and batch * oh * ow * cm * kh * step.kernel_hw[1] >= PARALLEL_MIN_WORK:
        chunk = Chunking(1, -(-oh // 2)) if batch == 1 else Chunking(-(-batch // 2), oh)
    nb, hb = chunk.samples, min(chunk.rows, oh)
    r = (hb - 1) * sh + (kh - 1) * dh + 1
    lane: Shapes = [(nb, len(lay.phases), r, lay.extent, cm)]
    if len(lay.groups) > 1:
        lane.append((nb, hb, ow * cm))
    return chunk, lane * min(cpus, len(chunk.blocks(batch, oh)))


def tiled_weight_elements(step: Step) -> int:
    """Elements of the weights tiled along the output width (and of the tiled bias)."""
    kh, kw = step.kernel_hw
    q = step.output.w * step.output.c
    return kh * kw * q + (q if step.bias else 0)


#: One block's prepared work: ``(n0, n1, h0, h1, zero views, copies, einsums)``; a copy is
#: ``(scratch view, input row slice, input column slice)``, an einsum
#: ``(tap view, tiled weights, accumulator or None)``.
Op = tuple[int, int, int, int, list[Array], list[tuple[Array, slice, slice]],
           list[tuple[Array, Array, Array | None]]]


class DepthwisePlan:
    """The ``direct`` kernel of one depthwise step: ``plan(x, out, bufs, blocks)`` fills the
    NHWC ``out`` from ``x`` using the workspace arrays ``bufs`` (shapes from :func:`plan`).

    ``weight``: ``(Kh, Kw, C, m)``; ``bias``: ``(C*m,)`` or None. The blocks are split over
    up to :func:`blas_thread_count` *lanes*, each with its own scratch, run on that many
    threads. Views into the scratch are built once per (batch, lanes, scratch address) and
    reused. A plan is not thread-safe (one call at a time)."""

    def __init__(self, step: Step, dtype: np.dtype[Any], weight: Array,
                 bias: Array | None) -> None:
        self.step = step
        self.dtype = dtype
        self.layout = layout(step)
        kh, kw, c, m = weight.shape
        self.c, self.m = c, m
        ow, cm = step.output.w, step.output.c
        w2 = weight.reshape(kh, kw, cm)
        self._wg: list[Array] = []
        for _, _, _, kxs in self.layout.groups:
            tiled = np.empty((kh, len(kxs), ow, cm), dtype=dtype)
            tiled[...] = w2[:, list(kxs), None, :]
            self._wg.append(tiled.reshape(kh, len(kxs), ow * cm))
        self._bias = None if bias is None else np.tile(bias, ow)
        self._key: tuple[int, ...] = ()
        self._lanes: list[list[Op]] = []

    def __call__(self, x: Array, out: Array, bufs: list[Array], blocks: list[Block]) -> None:
        per_lane = 2 if len(self.layout.groups) > 1 else 1
        lanes = len(bufs) // per_lane
        if lanes > 1:
            lanes = max(1, min(lanes, blas_thread_count()))
        key = (x.shape[0], lanes, *(int(b.ctypes.data) for b in bufs))
        if key != self._key:
            self._lanes = [self._build(blocks[i * len(blocks) // lanes:
                                              (i + 1) * len(blocks) // lanes],
                                       bufs[i * per_lane:(i + 1) * per_lane])
                           for i in range(lanes)]
            self._key = key
        run_lanes([partial(self._run, x, out, ops) for ops in self._lanes])

    def _run(self, x: Array, out: Array, ops: list[Op]) -> None:
        q = out.shape[2] * out.shape[3]
        bias = self._bias
        for n0, n1, h0, h1, zeros, copies, taps in ops:
            for z in zeros:
                z.fill(0)
            xs = x[n0:n1]
            for dst, rows, cols in copies:
                dst[...] = xs[:, rows, cols]
            dest = out[n0:n1, h0:h1].reshape(n1 - n0, h1 - h0, q)
            for view, wg, tmp in taps:
                if tmp is None:
                    _einsum("yinhq,yiq->nhq", view, wg, out=dest)
                else:
                    _einsum("yinhq,yiq->nhq", view, wg, out=tmp)
                    dest += tmp
            if bias is not None:
                dest += bias

    def _build(self, blocks: list[Block], bufs: list[Array]) -> list[Op]:
        step = self.step
        kh, sh, dh = step.kernel_hw[0], step.stride_hw[0], step.dilation_hw[0]
        top = step.padding[0]
        cm, q = step.output.c, step.output.w * step.output.c
        buf = bufs[0]
        acc = bufs[1] if len(bufs) > 1 else None
        item = self.dtype.itemsize
        ns, rs = buf.strides[0], buf.strides[2]
        ops: list[Op] = []
        for n0, n1, h0, h1 in blocks:
            nb, hb = n1 - n0, h1 - h0
            r = (hb - 1) * sh + (kh - 1) * dh + 1
            zeros, copies = self._fill(buf[:nb, :, :r], h0 * sh - top)
            taps: list[tuple[Array, Array, Array | None]] = []
            for gi, (plane, j0, jstep, kxs) in enumerate(self.layout.groups):
                view = as_strided(buf[0, plane, 0, j0], (kh, len(kxs), nb, hb, q),
                                  (dh * rs, jstep * cm * item, ns, sh * rs, item))
                taps.append((view, self._wg[gi],
                             None if gi == 0 or acc is None else acc[:nb, :hb]))
            ops.append((n0, n1, h0, h1, zeros, copies, taps))
        return ops

    def _fill(self, blk: Array, row0: int) -> tuple[list[Array],
                                                     list[tuple[Array, slice, slice]]]:
        """Zero views and copies that make ``blk[n, plane, r, wq, c*m + j] = x[n, row0 + r,
        wq*sw + phase - left, c]``, zero outside ``x``."""
        nb, _, r, wq, _ = blk.shape
        h, w = self.step.input.h, self.step.input.w
        c, m = self.c, self.m
        sw, left = self.step.stride_hw[1], self.step.padding[2]
        r_lo, r_hi = valid(r, h, 1, row0)
        if r_lo >= r_hi:
            return [blk], []
        zeros: list[Array] = []
        copies: list[tuple[Array, slice, slice]] = []
        if r_lo:
            zeros.append(blk[:, :, :r_lo])
        if r_hi < r:
            zeros.append(blk[:, :, r_hi:])
        rows = slice(row0 + r_lo, row0 + r_hi)
        for plane, p in enumerate(self.layout.phases):
            part = blk[:, plane, r_lo:r_hi]
            lo, hi = valid(wq, w, sw, p - left)
            if hi <= lo:
                zeros.append(part)
                continue
            if lo:
                zeros.append(part[:, :, :lo])
            if hi < wq:
                zeros.append(part[:, :, hi:])
            c0 = lo * sw + p - left
            cols = slice(c0, c0 + (hi - lo - 1) * sw + 1, sw)
            dst = part[:, :, lo:hi]
            if m == 1:
                copies.append((dst, rows, cols))
            else:
                d5 = dst.reshape(nb, r_hi - r_lo, hi - lo, c, m)
                copies.extend((d5[..., j], rows, cols) for j in range(m))
        return zeros, copies
