"""The numba-compiled loops (importing this module imports numba: about 0.25 s).

Only :mod:`convcost.bench.kernels.jit` imports it, when a ``*-jit`` algorithm is prepared.
Every array is passed flat (1-D, C-contiguous) and every size as a runtime integer in one
``geo`` array, so each function compiles once per dtype (float32, float64) whatever the
geometry. On AVX-512 hosts LLVM may use 512-bit vectors (:func:`_prefer_512_bit_vectors`).
``cache=True`` keeps the machine code on disk (``__pycache__``, or numba's user
cache directory when that is read-only); ``nogil=True`` lets the lanes of one step run on
Python threads.

Inner loops index *slices* (``xs = x[a:a + size]`` then ``xs[q]``), never ``x[a + q]``:
numba wraps negative indices, and with an offset it cannot prove non-negative LLVM then
refuses to vectorise the loop (measured: 1 ns against 0.09 ns per multiply-add).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba  # type: ignore[import-untyped, import-not-found, unused-ignore]


def _prefer_512_bit_vectors() -> None:
    """Let LLVM use 512-bit vectors on AVX-512 CPUs (it prefers 256-bit ones there by default).

    The passes are bound by loads, and a 512-bit load brings twice the values: MobileNet v2's
    depthwise layers measured about 10% faster (median ratio to torch 1.37-1.45 against
    1.50-1.56, alternating runs). This sets numba's process-wide CPU features (the host's,
    plus ``-prefer-256-bit``), so it is skipped when the user set ``NUMBA_CPU_NAME`` or
    ``NUMBA_CPU_FEATURES``, and has no effect once something in the process has compiled.
    """
    config: Any = numba.core.config
    if config.CPU_NAME is not None or config.CPU_FEATURES is not None:
        return
    try:
        import llvmlite.binding as llvm  # type: ignore[import-untyped, import-not-found, unused-ignore]

        features: Any = llvm.get_host_cpu_features()
    except Exception:  # noqa: BLE001 - unknown host: numba's defaults
        return
    if features.get("avx512f"):
        config.CPU_FEATURES = features.flatten() + ",-prefer-256-bit"


_prefer_512_bit_vectors()

#: Compiled loops: no reference counting (``_nrt=False``: they allocate nothing; slicing
#: then costs no atomic increments), fast math (reassociation lets LLVM vectorise the sums).
_Loop = Callable[..., None]
_numba: Any = numba  # its stubs lack the private ``_nrt`` option (and numba may be absent)
_jit: Callable[[_Loop], _Loop] = _numba.njit(cache=True, nogil=True, fastmath=True,
                                            boundscheck=False, _nrt=False)

# Slots of the depthwise ``geo`` array (one int64 array: one argument to type-check per call).
DW_H, DW_W, DW_C, DW_HO, DW_WO, DW_KH, DW_KW, DW_SH, DW_SW, DW_DH, DW_DW, DW_TOP, DW_LEFT, \
    DW_M, DW_B, DW_PLANES, DW_EXTENT, DW_RING, DW_DIRECT = range(19)
DW_SLOTS = 19


@_jit
def _pass9(o: Any, base: Any, src: Any, wt: Any, xs: Any, ws: Any, t: int, p0: int,
           size: int) -> None:  # pragma: no cover - compiled
    """``o[q] = base[q] + sum(wt[ws[i] + q] * src[xs[i] + p0 + q])`` over taps
    ``t <= i < t + 9``: one store per nine multiply-adds (a whole 3x3 kernel). ``p0`` is a
    multiple of ``C``, so the tiled weights need no offset."""
    a0 = src[xs[t] + p0:xs[t] + p0 + size]
    a1 = src[xs[t + 1] + p0:xs[t + 1] + p0 + size]
    a2 = src[xs[t + 2] + p0:xs[t + 2] + p0 + size]
    a3 = src[xs[t + 3] + p0:xs[t + 3] + p0 + size]
    a4 = src[xs[t + 4] + p0:xs[t + 4] + p0 + size]
    a5 = src[xs[t + 5] + p0:xs[t + 5] + p0 + size]
    a6 = src[xs[t + 6] + p0:xs[t + 6] + p0 + size]
    a7 = src[xs[t + 7] + p0:xs[t + 7] + p0 + size]
    a8 = src[xs[t + 8] + p0:xs[t + 8] + p0 + size]
    w0 = wt[ws[t]:ws[t] + size]
    w1 = wt[ws[t + 1]:ws[t + 1] + size]
    w2 = wt[ws[t + 2]:ws[t + 2] + size]
    w3 = wt[ws[t + 3]:ws[t + 3] + size]
    w4 = wt[ws[t + 4]:ws[t + 4] + size]
    w5 = wt[ws[t + 5]:ws[t + 5] + size]
    w6 = wt[ws[t + 6]:ws[t + 6] + size]
    w7 = wt[ws[t + 7]:ws[t + 7] + size]
    w8 = wt[ws[t + 8]:ws[t + 8] + size]
    for q in range(size):
        o[q] = (base[q] + w0[q] * a0[q] + w1[q] * a1[q] + w2[q] * a2[q] + w3[q] * a3[q]
                + w4[q] * a4[q] + w5[q] * a5[q] + w6[q] * a6[q] + w7[q] * a7[q]
                + w8[q] * a8[q])


@_jit
def _pass3(o: Any, base: Any, src: Any, wt: Any, xs: Any, ws: Any, t: int, p0: int, size: int,
           count: int) -> None:  # pragma: no cover - compiled
    """:func:`_pass9` for ``count`` (1 to 3) taps."""
    a0 = src[xs[t] + p0:xs[t] + p0 + size]
    w0 = wt[ws[t]:ws[t] + size]
    if count == 1:
        for q in range(size):
            o[q] = base[q] + w0[q] * a0[q]
        return
    a1 = src[xs[t + 1] + p0:xs[t + 1] + p0 + size]
    w1 = wt[ws[t + 1]:ws[t + 1] + size]
    if count == 2:
        for q in range(size):
            o[q] = base[q] + w0[q] * a0[q] + w1[q] * a1[q]
        return
    a2 = src[xs[t + 2] + p0:xs[t + 2] + p0 + size]
    w2 = wt[ws[t + 2]:ws[t + 2] + size]
    for q in range(size):
        o[q] = base[q] + w0[q] * a0[q] + w1[q] * a1[q] + w2[q] * a2[q]


@_jit
def _accumulate(o: Any, bias: Any, src: Any, wt: Any, xs: Any, ws: Any, n: int, p0: int,
                size: int) -> None:  # pragma: no cover - compiled
    """``o[q] = bias[q] + sum(wt[ws[i] + q] * src[xs[i] + p0 + q] for i < n)``: nine taps
    per pass over ``o`` where there are, else three (a pass reads and writes ``o`` once, in
    L1: ``size`` is one chunk)."""
    if n == 0:  # no tap inside the input
        for q in range(size):
            o[q] = bias[q]
        return
    t = 0
    base = bias
    while t < n:
        if n - t >= 9:
            _pass9(o, base, src, wt, xs, ws, t, p0, size)
            t += 9
        else:
            count = min(3, n - t)
            _pass3(o, base, src, wt, xs, ws, t, p0, size, count)
            t += count
        base = o


@_jit
def _chunks(out: Any, bias: Any, src: Any, wt: Any, xs: Any, ws: Any, n: int, p_start: int,
            p_end: int, bsz: int) -> None:  # pragma: no cover - compiled
    """:func:`_accumulate` over ``out[p_start:p_end]`` in chunks of ``bsz`` (a function of its
    own: inlined into the large :func:`depthwise`, the passes ran 2x slower)."""
    for p0 in range(p_start, p_end, bsz):
        size = min(bsz, p_end - p0)
        _accumulate(out[p0:p0 + size], bias, src, wt, xs, ws, n, p0, size)


@_jit
def _pixel_multiplier(x: Any, wt: Any, bias_t: Any, o: Any, xrow: int, xo: int, ky0: int,
                      ky1: int, g: Any) -> None:  # pragma: no cover - compiled
    """One output pixel ``o`` (``C*m`` values) at a multiplier ``m`` above 1: kernel rows
    ``[ky0, ky1)``, columns checked. ``xrow`` is the flat row index of kernel row 0."""
    w_in, c, kw = g[DW_W], g[DW_C], g[DW_KW]
    sw, dh, dwl, left, m, bsz = g[DW_SW], g[DW_DH], g[DW_DW], g[DW_LEFT], g[DW_M], g[DW_B]
    for o_ in range(c * m):
        o[o_] = bias_t[o_]
    for ky in range(ky0, ky1):
        for kx in range(kw):
            ix = xo * sw + kx * dwl - left
            if ix < 0 or ix >= w_in:
                continue
            xb = ((xrow + ky * dh) * w_in + ix) * c
            xs = x[xb:xb + c]
            wb = (ky * kw + kx) * bsz
            ws = wt[wb:wb + c * m]
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
def _row_ring(x: Any, wt: Any, bias_t: Any, out: Any, buf: Any, groups: Any, phases: Any,
              offsets: Any, xrow: int, ky0: int, ky1: int, g: Any) -> None:  # pragma: no cover
    """One output row (multiplier 1) from the ring of phase-plane rows in ``buf``: the input
    rows it needs are laid out unless a slot already holds them (``offsets[2]``: the input
    row of each slot)."""
    c, kw, dh, bsz = g[DW_C], g[DW_KW], g[DW_DH], g[DW_B]
    extent, ring = g[DW_EXTENT], g[DW_RING]
    plane_row = g[DW_PLANES] * extent * c
    xs, ws, tags = offsets[0], offsets[1], offsets[2]
    taps = 0
    for ky in range(ky0, ky1):
        iy = xrow + ky * dh  # flat input row (n*H + row)
        slot = iy % ring
        if tags[slot] != iy:  # each input row is laid out once per block
            _planes(x, buf[slot * plane_row:(slot + 1) * plane_row], iy, phases, g)
            tags[slot] = iy
        for k in range(groups.shape[0]):
            for t in range(groups[k, 5]):
                xs[taps] = (slot * plane_row
                            + (groups[k, 0] * extent + groups[k, 1] + t * groups[k, 2]) * c)
                ws[taps] = (ky * kw + groups[k, 3] + t * groups[k, 4]) * bsz
                taps += 1
    _chunks(out, bias_t, buf, wt, xs, ws, taps, 0, out.shape[0], bsz)


@_jit
def _row_direct(x: Any, wt: Any, bias_t: Any, out: Any, offsets: Any, xrow: int, ky0: int,
                ky1: int, xa: int, xb: int, g: Any) -> None:  # pragma: no cover - compiled
    """One output row (multiplier 1, unit width stride) read from ``x`` in place: interior
    columns ``[xa, xb)`` as one run, each border pixel with its taps inside the input."""
    w_in, c, kw = g[DW_W], g[DW_C], g[DW_KW]
    dh, dwl, left, bsz = g[DW_DH], g[DW_DW], g[DW_LEFT], g[DW_B]
    wo = out.shape[0] // c
    xs, ws = offsets[0], offsets[1]
    for xo in range(wo):
        if xa <= xo < xb:
            continue
        taps = 0
        for ky in range(ky0, ky1):
            for kx in range(kw):
                if 0 <= xo + kx * dwl - left < w_in:
                    xs[taps] = ((xrow + ky * dh) * w_in + kx * dwl - left) * c
                    ws[taps] = (ky * kw + kx) * bsz
                    taps += 1
        _chunks(out, bias_t, x, wt, xs, ws, taps, xo * c, (xo + 1) * c, bsz)
    taps = 0
    for ky in range(ky0, ky1):
        for kx in range(kw):
            xs[taps] = ((xrow + ky * dh) * w_in + kx * dwl - left) * c
            ws[taps] = (ky * kw + kx) * bsz
            taps += 1
    _chunks(out, bias_t, x, wt, xs, ws, taps, xa * c, xb * c, bsz)


@_jit
def depthwise(x: Any, wt: Any, bias_t: Any, out: Any, buf: Any, blocks: Any, groups: Any,
              phases: Any, offsets: Any, g: Any) -> None:  # pragma: no cover - compiled
    """Depthwise convolution of NHWC ``x`` into ``out`` for the ``blocks`` ``(n, y0, y1)``.

    ``wt``: ``(Kh, Kw, B)`` with ``wt[ky, kx, p] = w[ky, kx, p % (C*m)]`` (``B`` a multiple
    of ``C*m``, output channel ``c*m + j`` reading input channel ``c``); ``bias_t``: the bias
    (zeros without one) tiled to ``B``. Each output row visits only the kernel rows inside the
    input. With multiplier 1 a row is accumulated as flat runs of ``Wo*C`` values in chunks
    of ``B`` (:func:`_accumulate`): at unit width stride straight from ``x`` (interior
    columns; the border columns pixel by pixel with the taps inside the input), at larger
    strides from the kernel rows' zero-padded phase planes in ``buf`` (``Kh`` rows of
    ``(planes, extent, C)``; tap group ``groups[k] = (plane, j0, jstep, kx0, kxstep, count)``
    reads one strided run). Multipliers above 1 go pixel by pixel."""
    h, w_in, c = g[DW_H], g[DW_W], g[DW_C]
    ho, wo, kh, kw = g[DW_HO], g[DW_WO], g[DW_KH], g[DW_KW]
    sh, sw, dh, dwl = g[DW_SH], g[DW_SW], g[DW_DH], g[DW_DW]
    top, left, m = g[DW_TOP], g[DW_LEFT], g[DW_M]
    cm = c * m
    tags = offsets[2]  # the input row each ring slot holds
    ring = g[DW_RING]
    direct = g[DW_DIRECT] != 0
    # Interior columns [xa, xb): every tap inside the input.
    xa = min(wo, (left + sw - 1) // sw)
    last = w_in - 1 + left - (kw - 1) * dwl
    xb = max(xa, min(wo, last // sw + 1)) if last >= 0 else xa
    for bi in range(blocks.shape[0]):
        n, y0, y1 = blocks[bi, 0], blocks[bi, 1], blocks[bi, 2]
        for slot in range(ring):
            tags[slot] = -1
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
                    _pixel_multiplier(x, wt, bias_t, out[ob + xo * cm:ob + (xo + 1) * cm],
                                      xrow, xo, ky0, ky1, g)
                continue
            if sw > 1 or not direct:
                _row_ring(x, wt, bias_t, out[ob:ob + wo * c], buf, groups, phases, offsets,
                          xrow, ky0, ky1, g)
            else:
                _row_direct(x, wt, bias_t, out[ob:ob + wo * c], offsets, xrow, ky0, ky1, xa,
                            xb, g)
