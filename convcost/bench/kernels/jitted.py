"""The numba-compiled loops (importing this module imports numba: about 0.25 s).

Only :mod:`convcost.bench.kernels.jit` imports it, when a ``*-jit`` algorithm is prepared.
Every array is passed flat (1-D, C-contiguous) and every size as a runtime integer in one
``geo`` array, so each function compiles once per dtype (float32, float64) whatever the
geometry. ``cache=True`` keeps the machine code on disk (``__pycache__``, or numba's user
cache directory when that is read-only); ``nogil=True`` lets the lanes of one step run on
Python threads.

Inner loops index *slices* (``xs = x[a:a + size]`` then ``xs[q]``), never ``x[a + q]``:
numba wraps negative indices, and with an offset it cannot prove non-negative LLVM then
refuses to vectorise the loop (measured: 1 ns against 0.09 ns per multiply-add).
"""

from __future__ import annotations

from typing import Any

import numba  # type: ignore[import-untyped, import-not-found, unused-ignore]

_jit = numba.njit(cache=True, nogil=True, fastmath=True, boundscheck=False)
_inline = _jit

# Slots of the depthwise ``geo`` array (one int64 array: one argument to type-check per call).
DW_H, DW_W, DW_C, DW_HO, DW_WO, DW_KH, DW_KW, DW_SH, DW_SW, DW_DH, DW_DW, DW_TOP, DW_LEFT, \
    DW_M, DW_B, DW_PLANES, DW_EXTENT = range(17)
DW_SLOTS = 17


@_inline
def _taps(o: Any, x: Any, wt: Any, xb: int, wb: int, xstep: int, wstep: int, count: int,
          size: int) -> None:  # pragma: no cover - compiled
    """``o[q] += sum(wt[wb + t*wstep + q] * x[xb + t*xstep + q] for t < count)``, three taps
    per pass over ``o`` (one load and store of ``o`` per three multiply-adds)."""
    t = 0
    while t + 3 <= count:
        x0 = x[xb + t * xstep:xb + t * xstep + size]
        x1 = x[xb + (t + 1) * xstep:xb + (t + 1) * xstep + size]
        x2 = x[xb + (t + 2) * xstep:xb + (t + 2) * xstep + size]
        w0 = wt[wb + t * wstep:wb + t * wstep + size]
        w1 = wt[wb + (t + 1) * wstep:wb + (t + 1) * wstep + size]
        w2 = wt[wb + (t + 2) * wstep:wb + (t + 2) * wstep + size]
        for q in range(size):
            o[q] += w0[q] * x0[q] + w1[q] * x1[q] + w2[q] * x2[q]
        t += 3
    if count - t == 2:
        x0 = x[xb + t * xstep:xb + t * xstep + size]
        x1 = x[xb + (t + 1) * xstep:xb + (t + 1) * xstep + size]
        w0 = wt[wb + t * wstep:wb + t * wstep + size]
        w1 = wt[wb + (t + 1) * wstep:wb + (t + 1) * wstep + size]
        for q in range(size):
            o[q] += w0[q] * x0[q] + w1[q] * x1[q]
    elif count - t == 1:
        x0 = x[xb + t * xstep:xb + t * xstep + size]
        w0 = wt[wb + t * wstep:wb + t * wstep + size]
        for q in range(size):
            o[q] += w0[q] * x0[q]


@_inline
def _start(o: Any, bias_t: Any, size: int) -> None:  # pragma: no cover - compiled
    """``o[:size] = bias_t[:size]`` (zeros without a bias)."""
    if bias_t.shape[0] > 0:
        for q in range(size):
            o[q] = bias_t[q]
    else:
        for q in range(size):
            o[q] = 0.0


@_jit
def _pixel(x: Any, wt: Any, bias_t: Any, o: Any, xrow: int, xo: int, ky0: int, ky1: int,
           g: Any) -> None:  # pragma: no cover - compiled
    """One output pixel ``o`` (``C*m`` values): kernel rows ``[ky0, ky1)``, columns checked.
    ``xrow`` is the flat row index (``n*H + iy``) of kernel row 0."""
    w_in, c, kw = g[DW_W], g[DW_C], g[DW_KW]
    sw, dh, dwl, left, m, bsz = g[DW_SW], g[DW_DH], g[DW_DW], g[DW_LEFT], g[DW_M], g[DW_B]
    _start(o, bias_t, c * m)
    x0 = xo * sw - left
    kx0 = 0
    while kx0 < kw and x0 + kx0 * dwl < 0:
        kx0 += 1
    kx1 = kw
    while kx1 > kx0 and x0 + (kx1 - 1) * dwl >= w_in:
        kx1 -= 1
    for ky in range(ky0, ky1):
        xb = ((xrow + ky * dh) * w_in + x0 + kx0 * dwl) * c
        wb = (ky * kw + kx0) * bsz
        if m == 1:
            _taps(o, x, wt, xb, wb, dwl * c, bsz, kx1 - kx0, c)
            continue
        for kx in range(kx1 - kx0):
            xs = x[xb + kx * dwl * c:xb + kx * dwl * c + c]
            ws = wt[wb + kx * bsz:wb + kx * bsz + c * m]
            for ci in range(c):
                v = xs[ci]
                for j in range(m):
                    o[ci * m + j] += v * ws[ci * m + j]


@_jit
def _planes(x: Any, buf: Any, xrow: int, phases: Any, g: Any) -> None:  # pragma: no cover
    """``buf[i, j, c] = x[xrow, j*sw + phases[i] - left, c]``, zero outside the input: one
    input row, zero-padded and column-deinterleaved by the stride (phase planes)."""
    w_in, c, sw, left = g[DW_W], g[DW_C], g[DW_SW], g[DW_LEFT]
    planes, extent = g[DW_PLANES], g[DW_EXTENT]
    src = x[xrow * w_in * c:(xrow + 1) * w_in * c]
    for i in range(planes):
        dst = buf[i * extent * c:(i + 1) * extent * c]
        for j in range(extent):
            ix = j * sw + phases[i] - left
            d = dst[j * c:(j + 1) * c]
            if 0 <= ix < w_in:
                s = src[ix * c:(ix + 1) * c]
                for q in range(c):
                    d[q] = s[q]
            else:
                for q in range(c):
                    d[q] = 0.0


@_jit
def depthwise(x: Any, wt: Any, bias_t: Any, out: Any, buf: Any, blocks: Any, groups: Any,
              phases: Any, g: Any) -> None:  # pragma: no cover - compiled
    """Depthwise convolution of NHWC ``x`` into ``out`` for the ``blocks`` ``(n, y0, y1)``.

    ``wt``: ``(Kh, Kw, B)`` with ``wt[ky, kx, p] = w[ky, kx, p % (C*m)]`` (``B`` a multiple
    of ``C*m``, output channel ``c*m + j`` reading input channel ``c``); ``bias_t``: the bias
    tiled to ``B`` or empty. Each output row visits only the kernel rows inside the input.
    With multiplier 1 a row is accumulated as flat runs of ``Wo*C`` values, kernel row by
    kernel row, in chunks of ``B`` that stay in L1: at unit width stride straight from ``x``
    (interior columns; the border columns pixel by pixel, taps checked), at larger strides
    from the kernel rows' phase planes in ``buf`` (``Kh`` rows of ``(planes, extent, C)``:
    tap group ``groups[k] = (plane, j0, jstep, kx0, kxstep, count)`` reads one strided run).
    Multipliers above 1 go pixel by pixel."""
    h, w_in, c = g[DW_H], g[DW_W], g[DW_C]
    ho, wo, kh, kw = g[DW_HO], g[DW_WO], g[DW_KH], g[DW_KW]
    sh, sw, dh, dwl = g[DW_SH], g[DW_SW], g[DW_DH], g[DW_DW]
    top, left, m, bsz = g[DW_TOP], g[DW_LEFT], g[DW_M], g[DW_B]
    plane_row = g[DW_PLANES] * g[DW_EXTENT] * c
    cm = c * m
    # Interior columns [xa, xb): every tap inside the input.
    xa = min(wo, (left + sw - 1) // sw)
    last = w_in - 1 + left - (kw - 1) * dwl
    xb = max(xa, min(wo, last // sw + 1)) if last >= 0 else xa
    for bi in range(blocks.shape[0]):
        n, y0, y1 = blocks[bi, 0], blocks[bi, 1], blocks[bi, 2]
        for y in range(y0, y1):
            row0 = y * sh - top
            ky0 = 0
            while ky0 < kh and row0 + ky0 * dh < 0:
                ky0 += 1
            ky1 = kh
            while ky1 > ky0 and row0 + (ky1 - 1) * dh >= h:
                ky1 -= 1
            xrow = n * h + row0
            ob = (n * ho + y) * wo * cm
            if m > 1:
                for xo in range(wo):
                    _pixel(x, wt, bias_t, out[ob + xo * cm:ob + (xo + 1) * cm], xrow, xo,
                           ky0, ky1, g)
                continue
            if sw > 1:
                for ky in range(ky0, ky1):
                    _planes(x, buf[ky * plane_row:(ky + 1) * plane_row], xrow + ky * dh,
                            phases, g)
                end = wo * c
                for p0 in range(0, end, bsz):
                    size = min(bsz, end - p0)
                    o = out[ob + p0:ob + p0 + size]
                    _start(o, bias_t, size)
                    for ky in range(ky0, ky1):
                        for k in range(groups.shape[0]):
                            plane, j0, jstep = groups[k, 0], groups[k, 1], groups[k, 2]
                            xb0 = ky * plane_row + (plane * g[DW_EXTENT] + j0) * c + p0
                            wb0 = (ky * kw + groups[k, 3]) * bsz
                            _taps(o, buf, wt, xb0, wb0, jstep * c, groups[k, 4] * bsz,
                                  groups[k, 5], size)
                continue
            for xo in range(xa):
                _pixel(x, wt, bias_t, out[ob + xo * c:ob + (xo + 1) * c], xrow, xo, ky0, ky1,
                       g)
            for xo in range(xb, wo):
                _pixel(x, wt, bias_t, out[ob + xo * c:ob + (xo + 1) * c], xrow, xo, ky0, ky1,
                       g)
            end = xb * c
            for p0 in range(xa * c, end, bsz):
                size = min(bsz, end - p0)
                o = out[ob + p0:ob + p0 + size]
                _start(o, bias_t, size)
                for ky in range(ky0, ky1):
                    xb0 = (xrow + ky * dh) * w_in * c + p0 - left * c
                    _taps(o, x, wt, xb0, ky * kw * bsz, dwl * c, bsz, kw, size)
