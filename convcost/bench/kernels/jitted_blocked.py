"""The numba-compiled ``blocked-jit`` convolution: register-blocked direct convolution of an
NHWC input, zero-padded row by row where it is padded (importing this module imports numba and
:mod:`~convcost.bench.kernels.simd`).

Each tile computes 6 output pixels of one row by 2 vectors of output channels (12
accumulators, 16 or 8 channels): per tap it loads 2 weight vectors and broadcasts 6 input
values, 12 fused multiply-adds with the accumulators in registers throughout the tap loop,
then one store per vector: the shape of AVX2 GEMM micro-kernels (15 of the 16 vector
registers), with no im2col copy. Rows narrower than a tile go pixel by pixel, outputs with
one vector of channels (8 float32) or more but fewer than two take one-vector tiles, and
outputs narrower than a vector a scalar loop.

The taps are *runs*: ``runs[r] = (x offset, w offset, length)``, a run of ``length``
contiguous input values multiplying ``length`` consecutive weight rows. Without width
dilation a kernel row's ``Kw*Cin`` taps are one run; with it each ``(ky, kx)`` is a run of
``Cin``. As in :mod:`~convcost.bench.kernels.jitted`, arrays are flat, every size is a
runtime integer in ``geo``, so each function compiles once per dtype. Nothing here checks an
index: :class:`~convcost.bench.kernels.jit.BlockedJit` builds the arguments.
"""

from __future__ import annotations

from typing import Any

from convcost.bench.kernels.jitted import _jit
from convcost.bench.kernels.simd import vbroadcast, vfma, vload, vstore

# Slots of the ``geo`` array (``BK_PAD``: 1 when the input is padded into the lane's buffer).
BK_H, BK_W, BK_HP, BK_WP, BK_C, BK_HO, BK_WO, BK_COUT, BK_SH, BK_SW, BK_SPAN, BK_TOP, \
    BK_LEFT, BK_LANES, BK_PAD, BK_BAND = range(16)
BK_SLOTS = 16
#: Output pixels of the widest tile.
TILE_PIXELS = 6


@_jit
def _tile6x2(x: Any, w: Any, bias: Any, out: Any, xb: int, ps: int, ob: int, co: int,
             cout: int, runs: Any, lanes: int) -> None:  # pragma: no cover - compiled
    """Pixels ``xb + p*ps`` (input offsets), ``p < 6``, channels ``[co, co + 2*lanes)``
    into ``out[ob + p*cout + co:]``."""
    a00 = vload(bias, co)
    a01 = vload(bias, co + lanes)
    a10, a11, a20, a21, a30, a31, a40, a41, a50, a51 = (a00, a01, a00, a01, a00, a01, a00,
                                                          a01, a00, a01)
    for r in range(runs.shape[0]):
        xo = xb + runs[r, 0]
        wo = runs[r, 1] + co
        for j in range(runs[r, 2]):
            w0 = vload(w, wo + j * cout)
            w1 = vload(w, wo + j * cout + lanes)
            v = vbroadcast(x, xo + j)
            a00 = vfma(v, w0, a00)
            a01 = vfma(v, w1, a01)
            v = vbroadcast(x, xo + ps + j)
            a10 = vfma(v, w0, a10)
            a11 = vfma(v, w1, a11)
            v = vbroadcast(x, xo + 2 * ps + j)
            a20 = vfma(v, w0, a20)
            a21 = vfma(v, w1, a21)
            v = vbroadcast(x, xo + 3 * ps + j)
            a30 = vfma(v, w0, a30)
            a31 = vfma(v, w1, a31)
            v = vbroadcast(x, xo + 4 * ps + j)
            a40 = vfma(v, w0, a40)
            a41 = vfma(v, w1, a41)
            v = vbroadcast(x, xo + 5 * ps + j)
            a50 = vfma(v, w0, a50)
            a51 = vfma(v, w1, a51)
    o = ob + co
    vstore(out, o, a00)
    vstore(out, o + lanes, a01)
    vstore(out, o + cout, a10)
    vstore(out, o + cout + lanes, a11)
    vstore(out, o + 2 * cout, a20)
    vstore(out, o + 2 * cout + lanes, a21)
    vstore(out, o + 3 * cout, a30)
    vstore(out, o + 3 * cout + lanes, a31)
    vstore(out, o + 4 * cout, a40)
    vstore(out, o + 4 * cout + lanes, a41)
    vstore(out, o + 5 * cout, a50)
    vstore(out, o + 5 * cout + lanes, a51)


@_jit
def _tile6x1(x: Any, w: Any, bias: Any, out: Any, xb: int, ps: int, ob: int, co: int,
             cout: int, runs: Any) -> None:  # pragma: no cover - compiled
    """:func:`_tile6x2` for one vector of channels."""
    a0 = vload(bias, co)
    a1, a2, a3, a4, a5 = a0, a0, a0, a0, a0
    for r in range(runs.shape[0]):
        xo = xb + runs[r, 0]
        wo = runs[r, 1] + co
        for j in range(runs[r, 2]):
            w0 = vload(w, wo + j * cout)
            a0 = vfma(vbroadcast(x, xo + j), w0, a0)
            a1 = vfma(vbroadcast(x, xo + ps + j), w0, a1)
            a2 = vfma(vbroadcast(x, xo + 2 * ps + j), w0, a2)
            a3 = vfma(vbroadcast(x, xo + 3 * ps + j), w0, a3)
            a4 = vfma(vbroadcast(x, xo + 4 * ps + j), w0, a4)
            a5 = vfma(vbroadcast(x, xo + 5 * ps + j), w0, a5)
    o = ob + co
    vstore(out, o, a0)
    vstore(out, o + cout, a1)
    vstore(out, o + 2 * cout, a2)
    vstore(out, o + 3 * cout, a3)
    vstore(out, o + 4 * cout, a4)
    vstore(out, o + 5 * cout, a5)


@_jit
def _tile1(x: Any, w: Any, bias: Any, out: Any, xb: int, ob: int, co: int, cout: int,
           runs: Any, vectors: int, lanes: int) -> None:  # pragma: no cover - compiled
    """One pixel, ``vectors`` (1 or 2) vectors of channels from ``co``."""
    a0 = vload(bias, co)
    a1 = vload(bias, co + lanes) if vectors == 2 else a0
    for r in range(runs.shape[0]):
        xo = xb + runs[r, 0]
        wo = runs[r, 1] + co
        for j in range(runs[r, 2]):
            v = vbroadcast(x, xo + j)
            a0 = vfma(v, vload(w, wo + j * cout), a0)
            if vectors == 2:
                a1 = vfma(v, vload(w, wo + j * cout + lanes), a1)
    vstore(out, ob + co, a0)
    if vectors == 2:
        vstore(out, ob + co + lanes, a1)


@_jit
def _scalar(x: Any, w: Any, bias: Any, out: Any, xb: int, ob: int, co: int, cout: int,
            runs: Any) -> None:  # pragma: no cover - compiled
    """One pixel, channels ``[co, cout)`` (fewer than a vector), scalar."""
    for k in range(co, cout):
        acc = bias[k]
        for r in range(runs.shape[0]):
            xo = xb + runs[r, 0]
            wo = runs[r, 1] + k
            for j in range(runs[r, 2]):
                acc += x[xo + j] * w[wo + j * cout]
        out[ob + k] = acc


@_jit
def _pad_rows(x: Any, buf: Any, n: int, r0: int, r1: int,
              g: Any) -> None:  # pragma: no cover - compiled
    """``buf[r - r0] =`` padded row ``r`` of sample ``n`` of the NHWC ``x``, for ``r0 <= r <
    r1``: the input row with ``left`` zero columns before it and zeros after, or zeros."""
    h, w, c, wp = g[BK_H], g[BK_W], g[BK_C], g[BK_WP]
    top, left = g[BK_TOP], g[BK_LEFT]
    row, before, inner = wp * c, left * c, w * c
    for r in range(r0, r1):
        dst = buf[(r - r0) * row:(r - r0 + 1) * row]
        iy = r - top
        if iy < 0 or iy >= h:
            for q in range(row):
                dst[q] = 0.0
            continue
        src = x[(n * h + iy) * inner:(n * h + iy + 1) * inner]
        for q in range(before):
            dst[q] = 0.0
        body = dst[before:before + inner]
        for q in range(inner):
            body[q] = src[q]
        for q in range(before + inner, row):
            dst[q] = 0.0


@_jit
def blocked(x: Any, w: Any, bias: Any, out: Any, buf: Any, blocks: Any, runs: Any,
            g: Any) -> None:  # pragma: no cover - compiled
    """Convolution of the NHWC ``x`` into NHWC ``out`` for the ``blocks`` ``(n, y0, y1)`` of
    output rows. ``w``: ``(Kh, Kw, C, Cout)``; ``bias``: ``(Cout,)`` (zeros without one).
    With padding, each block's input rows are first laid out zero-padded in ``buf`` (this
    lane's own: no copy is shared between threads, and the tiles then read it from cache);
    without, the tiles read ``x`` in place. Per band of ``geo[BK_BAND]`` rows (one, unless
    the weights outgrow L2: :func:`~convcost.bench.kernels.jit.band_rows`), each vector pair
    of channels sweeps the band's pixels, so its weights stay in cache. The last tile of a
    row (of the channels)
    overlaps the one before rather than running narrower: the overlap is computed twice, to
    the same values, at full speed."""
    hp, wp, c, ho, wo = g[BK_HP], g[BK_WP], g[BK_C], g[BK_HO], g[BK_WO]
    cout, sh, sw, lanes = g[BK_COUT], g[BK_SH], g[BK_SW], g[BK_LANES]
    pad = g[BK_PAD] != 0
    band = max(1, g[BK_BAND])
    ps = sw * c  # input offset between neighbouring output pixels
    step = 2 * lanes if cout >= 2 * lanes else lanes
    for bi in range(blocks.shape[0]):
        n, y0, y1 = blocks[bi, 0], blocks[bi, 1], blocks[bi, 2]
        src = x
        row0 = n * hp  # the source row of padded row 0 of this sample
        if pad:
            r0 = y0 * sh
            _pad_rows(x, buf, n, r0, min(hp, (y1 - 1) * sh + g[BK_SPAN]), g)
            src = buf
            row0 = -r0
        for b0 in range(y0, y1, band):
            b1 = min(y1, b0 + band)
            if cout < lanes:
                for y in range(b0, b1):
                    xrow = (row0 + y * sh) * wp * c
                    orow = (n * ho + y) * wo * cout
                    for ox in range(wo):
                        _scalar(src, w, bias, out, xrow + ox * ps, orow + ox * cout, 0, cout,
                                runs)
                continue
            for co0 in range(0, cout, step):
                co = min(co0, cout - step)
                for y in range(b0, b1):
                    xrow = (row0 + y * sh) * wp * c
                    orow = (n * ho + y) * wo * cout
                    if wo < TILE_PIXELS:
                        for ox in range(wo):
                            _tile1(src, w, bias, out, xrow + ox * ps, orow + ox * cout, co,
                                   cout, runs, step // lanes, lanes)
                        continue
                    for ox0 in range(0, wo, TILE_PIXELS):
                        ox = min(ox0, wo - TILE_PIXELS)
                        if step == 2 * lanes:
                            _tile6x2(src, w, bias, out, xrow + ox * ps, ps, orow + ox * cout,
                                     co, cout, runs, lanes)
                        else:
                            _tile6x1(src, w, bias, out, xrow + ox * ps, ps, orow + ox * cout,
                                     co, cout, runs)
