"""The numba kernels' switch and typed wrappers (the ``jit`` extra: ``pip install
convcost[jit]``).

When numba is importable and not switched off (environment variable ``CONVCOST_JIT=0``),
at float32 and float64 depthwise convolutions run ``direct-jit``
(:func:`convcost.bench.kernels.jitted.depthwise`) instead of NumPy's ``direct``, and
convolutions with few input channels per kernel row (stems, small KxK: :func:`uses_blocked`)
run ``blocked-jit`` (:func:`convcost.bench.kernels.jitted_blocked.blocked`) instead of an
im2col GEMM. Whether numba is there is found without importing it
(:func:`importlib.util.find_spec`): commands that do not benchmark never pay numba's 0.25 s
import. The compiled loops live in :mod:`~convcost.bench.kernels.jitted` and
:mod:`~convcost.bench.kernels.jitted_blocked`, imported when a ``*-jit`` kernel is prepared;
that preparation also compiles them (or loads them from numba's on-disk cache), so no
compilation lands in a timed region.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Any

import numpy as np

from convcost.bench.kernels import depthwise
from convcost.bench.kernels.base import Array, Block, Chunking, Shapes, aligned_empty
from convcost.bench.machine import cpu_count
from convcost.model.program import Step

#: The environment variable that switches the numba kernels off (``0``, ``off``, ``false``,
#: ``no``); unset or anything else: on when numba is importable.
ENV = "CONVCOST_JIT"
_OFF = frozenset({"0", "off", "false", "no"})
#: dtypes numba compiles the kernels for (numba has no float16 arithmetic on CPUs).
JIT_DTYPES = ("float32", "float64")
#: Elements of one chunk of an output row accumulated tap by tap (2 KiB at float32: it and
#: the input runs it reads stay in L1).
CHUNK_ELEMENTS = 512


@functools.cache
def numba_installed() -> bool:
    """Whether numba can be found (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def enabled() -> bool:
    """Whether the ``*-jit`` kernels are used: numba installed and :data:`ENV` not off."""
    return os.environ.get(ENV, "").strip().lower() not in _OFF and numba_installed()


def enabled_for(dtype: np.dtype[Any] | str) -> bool:
    """:func:`enabled`, for a dtype numba can run (False for a name NumPy does not know,
    such as ``bfloat16`` where nothing registered it)."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return False
    return name in JIT_DTYPES and enabled()


#: dtypes whose loops this process has compiled or loaded (see :func:`warm`).
_WARM: set[str] = set()


def warm(dtype: np.dtype[Any] | str) -> float:
    """Compile the loops for ``dtype`` (or load them from numba's on-disk cache); the
    seconds it took, 0.0 when this process already has them. A cold cache costs about 15 s
    per dtype on the dev VM, a warm one well under a second."""
    name = np.dtype(dtype).name
    if name in _WARM:
        return 0.0
    import time

    from convcost.bench.kernels import jitted, jitted_blocked

    start = time.perf_counter()
    empty = np.zeros(0, name)
    table = np.zeros((0, 3), np.int64)
    # The argument types of every real call (arrays of these dtypes, ranks and layouts):
    # no blocks, so no work (sizes of 1: the set-up divides by some).
    jitted.depthwise(empty, empty, empty, empty, empty, table, np.zeros((0, 6), np.int64),
                     np.zeros(0, np.int64), np.zeros((3, 1), np.int64),
                     np.ones(jitted.DW_SLOTS, np.int64))
    jitted_blocked.blocked(empty, empty, empty, empty, empty, table, table,
                           np.ones(jitted_blocked.BK_SLOTS, np.int64))
    _WARM.add(name)
    return time.perf_counter() - start


def chunk(step: Step) -> int:
    """``B``: values of an output row accumulated at once, a multiple of ``C*m``."""
    c, cm = step.input.c, step.output.c
    if cm != c:
        return cm
    return c * max(1, CHUNK_ELEMENTS // c)


def weight_elements(step: Step) -> int:
    """Elements of the derived weights: ``(Kh, Kw, B)`` tiled taps and the tiled bias (zeros
    without a bias: the first pass adds it)."""
    kh, kw = step.kernel_hw
    b = chunk(step)
    return (kh * kw + 1) * b


#: Unit-width-stride steps with at least this many channels read the input in place (border
#: columns pixel by pixel); narrower ones read the ring of zero-padded rows, whose border
#: handling is free (measured alternating, 1 thread: 112x112x32 0.42-0.47 ms from the ring
#: against 0.51-0.57 in place; 56x56x144 0.58-0.64 against 0.52-0.55).
DIRECT_MIN_CHANNELS = 64


def ring_rows(step: Step) -> int:
    """Input rows the ring of padded (phase-plane) rows holds: one kernel's span."""
    return (step.kernel_hw[0] - 1) * step.dilation_hw[0] + 1


def uses_ring(step: Step) -> bool:
    """Whether the kernel reads ``step``'s input from the ring of padded rows: multiplier 1,
    and a strided width or fewer than :data:`DIRECT_MIN_CHANNELS` channels."""
    return step.output.c == step.input.c and (step.stride_hw[1] > 1
                                              or step.input.c < DIRECT_MIN_CHANNELS)


def _plane_elements(step: Step) -> int:
    """Scratch of one lane: the ring of input rows laid out as zero-padded phase planes."""
    if not uses_ring(step):
        return 0
    lay = depthwise.layout(step)
    return ring_rows(step) * len(lay.phases) * lay.extent * step.input.c


def plan(step: Step, batch: int) -> tuple[Chunking, Shapes]:
    """Blocks (:func:`_lane_blocks`) and one phase-planes scratch per lane."""
    chunking, lanes = _lane_blocks(step, batch)
    per_lane = _plane_elements(step)
    return chunking, [(per_lane,)] * lanes if per_lane else []


def _lane_blocks(step: Step, batch: int) -> tuple[Chunking, int]:
    """The compiled kernels' blocks, one sample each (or, for one sample with enough
    multiply-adds, one part of its rows per CPU), and the lanes they run on."""
    (kh, kw), oh = step.kernel_hw, step.output.h
    macs = batch * step.output.elements * kh * kw * (step.input.c // step.groups)
    parts = min(cpu_count(), oh) if batch == 1 and macs >= depthwise.PARALLEL_MIN_WORK else 1
    chunking = Chunking(1, -(-oh // parts))
    return chunking, min(cpu_count(), len(chunking.blocks(batch, oh)))


class _Laned:
    """What the compiled kernels share: ``kernel(x, out, bufs, blocks)`` deals the blocks
    (one sample each) over up to
    :func:`~convcost.bench.kernels.depthwise.blas_thread_count` lanes, one scratch array
    each, and runs :meth:`_run` for every lane on its own thread (the compiled loops release
    the GIL)."""

    def __init__(self) -> None:
        self._most = cpu_count()  # lanes at most (per-lane state is sized for this many)
        self._key: tuple[tuple[Block, ...], int] = ((), 0)
        self._lanes: list[Array] = []

    def __call__(self, x: Array, out: Array, bufs: list[Array], blocks: list[Block]) -> None:
        lanes = max(1, min(len(blocks), depthwise.blas_thread_count(), len(bufs) or self._most,
                           self._most))
        key = (tuple(blocks), lanes)
        if key != self._key:
            # Each lane's blocks as an int64 (n, h0, h1) table for the compiled loops.
            count = len(blocks)
            self._lanes = [np.array([(n0, h0, h1) for n0, _, h0, h1 in
                                     blocks[i * count // lanes:(i + 1) * count // lanes]],
                                    dtype=np.int64) for i in range(lanes)]
            self._key = key
        # A strided input (a channel slice's view) is copied: the loops index flat rows.
        flat_x = np.ascontiguousarray(x).reshape(-1)
        flat_out = out.reshape(-1)
        scratch = [b.reshape(-1) for b in bufs] or [flat_x[:0]] * lanes
        depthwise.run_lanes([functools.partial(self._run, flat_x, flat_out, scratch[i],
                                               self._lanes[i], i) for i in range(lanes)])

    def _run(self, x: Array, out: Array, buf: Array, blocks: Array, lane: int) -> None:
        """Lane ``lane``'s blocks: flat ``x`` into flat ``out``, with scratch ``buf``."""
        raise NotImplementedError


class DepthwiseJit(_Laned):
    """The ``direct-jit`` kernel of one depthwise step (called as :class:`_Laned`): fills
    the NHWC ``out``. ``weight``: ``(Kh, Kw, C, m)``; ``bias``: ``(C*m,)`` or None.
    Compiles (or loads from cache) at construction. Not thread-safe."""

    def __init__(self, step: Step, dtype: np.dtype[Any], weight: Array,
                 bias: Array | None) -> None:
        from convcost.bench.kernels import jitted

        super().__init__()
        self._kernel = jitted.depthwise
        kh, kw, c, m = weight.shape
        b = chunk(step)
        self._wt: Array = np.ascontiguousarray(
            np.tile(weight.reshape(kh, kw, c * m), (1, 1, b // (c * m)))).reshape(-1)
        self._bias: Array = (np.zeros(b, dtype) if bias is None
                             else np.tile(bias, b // (c * m)).astype(dtype, copy=False))
        lay = depthwise.layout(step)
        groups = [(plane, j0, jstep, kxs[0], kxs[1] - kxs[0] if len(kxs) > 1 else 1, len(kxs))
                  for plane, j0, jstep, kxs in lay.groups]
        self._groups: Array = np.array(groups, dtype=np.int64)
        self._phases: Array = np.array(lay.phases, dtype=np.int64)
        (h, w, _), (oh, ow, _) = step.input, step.output
        geo = [0] * jitted.DW_SLOTS
        for slot, value in ((jitted.DW_H, h), (jitted.DW_W, w), (jitted.DW_C, c),
                            (jitted.DW_HO, oh), (jitted.DW_WO, ow), (jitted.DW_KH, kh),
                            (jitted.DW_KW, kw), (jitted.DW_SH, step.stride_hw[0]),
                            (jitted.DW_SW, step.stride_hw[1]),
                            (jitted.DW_DH, step.dilation_hw[0]),
                            (jitted.DW_DW, step.dilation_hw[1]), (jitted.DW_TOP, step.padding[0]),
                            (jitted.DW_LEFT, step.padding[2]), (jitted.DW_M, m),
                            (jitted.DW_B, b), (jitted.DW_PLANES, len(lay.phases)),
                            (jitted.DW_EXTENT, lay.extent), (jitted.DW_RING, ring_rows(step)),
                            (jitted.DW_DIRECT, 0 if uses_ring(step) else 1)):
            geo[slot] = value
        self._geo: Array = np.array(geo, dtype=np.int64)
        slots = max(kh * kw, ring_rows(step))
        self._offsets = [np.zeros((3, slots), np.int64) for _ in range(self._most)]
        warm(dtype)  # compile now (or load from numba's cache), never in a timed region

    def _run(self, x: Array, out: Array, buf: Array, blocks: Array, lane: int) -> None:
        self._kernel(x, self._wt, self._bias, out, buf, blocks, self._groups, self._phases,
                     self._offsets[lane], self._geo)


#: ``blocked-jit`` takes groups-1 KxK convolutions with fewer than this many taps per kernel
#: row (``Kw*Cin``): above it the weights a tile sweeps leave L1, and the im2col and shifted
#: GEMMs run near OpenBLAS's peak. Measured at 1 thread, alternating, against the NumPy
#: kernel: 0.48-0.94 of its time from 112x112x16 3x3(16) (K=48) to 224x224x3 3x3(64) (one
#: run of that 1.30: its 12.8 MB output is memory-bound either way), the stems 0.72-0.97
#: (11x11 s4 0.85); ResNet-50's 3x3s (K=192 to 1536) 1.2-5x slower.
BLOCKED_MAX_RUN = 96
#: ... and at least one vector of output channels (8 float32): narrower outputs run scalar
#: (LeNet's 28x28x1 5x5(6) took 5x the im2col GEMM's time).
BLOCKED_MIN_CHANNELS = 8


def uses_blocked(step: Step) -> bool:
    """Whether ``step`` suits ``blocked-jit``: a groups-1 convolution with a kernel larger
    than 1x1, fewer than :data:`BLOCKED_MAX_RUN` taps per kernel row and at least
    :data:`BLOCKED_MIN_CHANNELS` output channels."""
    return (step.groups == 1 and step.kernel_hw != (1, 1)
            and step.kernel_hw[1] * step.input.c < BLOCKED_MAX_RUN
            and step.output.c >= BLOCKED_MIN_CHANNELS)


def _padded(step: Step) -> bool:
    return any(step.padding)


def blocked_plan(step: Step, batch: int) -> tuple[Chunking, Shapes]:
    """Blocks (:func:`_lane_blocks`) and, with padding, one buffer per lane for a block's
    input rows laid out zero-padded."""
    (h, w, c), oh = step.input, step.output.h
    top, bottom, left, right = step.padding
    chunking, lanes = _lane_blocks(step, batch)
    if not _padded(step):
        return chunking, []
    rows = min(h + top + bottom, (min(chunking.rows, oh) - 1) * step.stride_hw[0]
               + _span(step))
    return chunking, [(rows * (w + left + right) * c,)] * lanes


#: Weights (bytes) that stay in L2 while a row's tiles sweep them all; above this a band of
#: rows is swept per vector pair of channels instead, so each pair's weights are read from
#: farther once per band rather than once per row.
BAND_WEIGHT_BYTES = 1 << 17
#: The input rows of a band (bytes) should fit in this much of L2.
BAND_INPUT_BYTES = 1 << 18


def band_rows(step: Step, itemsize: int) -> int:
    """Output rows per band: 1 when the weights fit :data:`BAND_WEIGHT_BYTES`, else as many
    as keep the band's input rows within :data:`BAND_INPUT_BYTES`."""
    (kh, kw), (cin, cout) = step.kernel_hw, (step.input.c, step.output.c)
    if kh * kw * cin * cout * itemsize <= BAND_WEIGHT_BYTES:
        return 1
    row = (step.input.w + step.padding[2] + step.padding[3]) * cin * itemsize
    rows = BAND_INPUT_BYTES // max(1, row)
    return max(1, (rows - _span(step)) // step.stride_hw[0] + 1)


def _span(step: Step) -> int:
    """Input rows one output row reads: ``(Kh - 1)*dh + 1``."""
    return (step.kernel_hw[0] - 1) * step.dilation_hw[0] + 1


def _runs(step: Step, padded_width: int) -> Array:
    """The tap runs ``(x offset, w offset, length)`` of ``step`` over an input of
    ``padded_width`` columns: one run of ``Kw*Cin`` per kernel row, or ``Cin`` per tap when
    the width is dilated."""
    (kh, kw), (dh, dw), c = step.kernel_hw, step.dilation_hw, step.input.c
    cout = step.output.c
    if dw == 1:
        rows = [(ky * dh * padded_width * c, ky * kw * c * cout, kw * c) for ky in range(kh)]
    else:
        rows = [(ky * dh * padded_width * c + kx * dw * c, (ky * kw + kx) * c * cout, c)
                for ky in range(kh) for kx in range(kw)]
    return np.array(rows, dtype=np.int64)


class BlockedJit(_Laned):
    """The ``blocked-jit`` kernel of one convolution step (called as :class:`_Laned`): fills
    the NHWC ``out``. ``weight``: ``(Kh, Kw, Cin, Cout)``; ``bias``: ``(Cout,)`` or None.
    Compiles (or loads from cache) at construction. Not thread-safe."""

    def __init__(self, step: Step, dtype: np.dtype[Any], weight: Array,
                 bias: Array | None) -> None:
        from convcost.bench.kernels import jitted_blocked, simd

        super().__init__()
        self._kernel = jitted_blocked.blocked
        # A 64-byte-aligned copy: every weight vector the tiles load is then one cache line's
        # half (the 7x7 stem ran 15% faster than from NumPy's 16-byte-aligned array).
        self._w: Array = aligned_empty((weight.size,), np.dtype(dtype))
        self._w[...] = weight.reshape(-1)
        self._bias: Array = (np.zeros(step.output.c, dtype) if bias is None
                             else np.ascontiguousarray(bias, dtype=dtype))
        (h, w, c), (oh, ow, cout) = step.input, step.output
        top, bottom, left, right = step.padding
        hp, wp = h + top + bottom, w + left + right
        self._runs = _runs(step, wp)
        geo = [0] * jitted_blocked.BK_SLOTS
        for slot, value in ((jitted_blocked.BK_H, h), (jitted_blocked.BK_W, w),
                            (jitted_blocked.BK_HP, hp), (jitted_blocked.BK_WP, wp),
                            (jitted_blocked.BK_C, c), (jitted_blocked.BK_HO, oh),
                            (jitted_blocked.BK_WO, ow), (jitted_blocked.BK_COUT, cout),
                            (jitted_blocked.BK_SH, step.stride_hw[0]),
                            (jitted_blocked.BK_SW, step.stride_hw[1]),
                            (jitted_blocked.BK_SPAN, _span(step)),
                            (jitted_blocked.BK_TOP, top), (jitted_blocked.BK_LEFT, left),
                            (jitted_blocked.BK_LANES, simd.lanes(np.dtype(dtype).itemsize)),
                            (jitted_blocked.BK_PAD, 1 if _padded(step) else 0),
                            (jitted_blocked.BK_BAND, band_rows(step, np.dtype(dtype).itemsize))):
            geo[slot] = value
        self._geo: Array = np.array(geo, dtype=np.int64)
        warm(dtype)  # compile now (or load from numba's cache), never in a timed region

    def _run(self, x: Array, out: Array, buf: Array, blocks: Array, lane: int) -> None:
        self._kernel(x, self._w, self._bias, out, buf, blocks, self._runs, self._geo)


__all__ = ["BLOCKED_MAX_RUN", "ENV", "JIT_DTYPES", "BlockedJit", "DepthwiseJit",
           "blocked_plan", "chunk", "enabled", "enabled_for", "numba_installed", "plan",
           "uses_blocked", "weight_elements"]
