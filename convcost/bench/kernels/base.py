"""What every kernel shares: the dtype mapping, the prepared-step base class, the scratch
workspace, and how a kernel walks its output in blocks (chunking and planning).

Arrays are NHWC batches ``(N, H, W, C)``. A :class:`PreparedStep` is one program step with its
weights allocated and its algorithm fixed; it takes every size from the step (``step.output``
is the output size, ``step.padding`` the padding) and is then called many times. The memory
estimate (:func:`convcost.bench.executor.estimate_bytes`) asks the step classes what they will
hold (:meth:`PreparedStep.weight_elements`), what scratch they take (:meth:`PreparedStep.plan`)
and what they allocate for a moment (:meth:`PreparedStep.temporary_elements`), without
preparing anything.

Weights are random: ``N(0, 1/fan_in)``-like (variance preserving for linear layers), so
activations keep a sane range in deep chains; or zeros (``init="zeros"``: no random draws, for
shape checks of large models). ``PreparedStep.params`` exposes them in documented layouts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt

from convcost.bench.machine import EXECUTABLE_DTYPES
from convcost.errors import UnsupportedDtype
from convcost.model.program import Shape, Step

Array = npt.NDArray[Any]
#: A workspace plan: the shapes (in elements) of the scratch arrays a call takes.
Shapes = list[tuple[int, ...]]
#: ``(n0, n1, h0, h1)``: samples ``[n0, n1)``, rows ``[h0, h1)`` of one block.
Block = tuple[int, int, int, int]
#: A kernel object: ``kernel(x, out, scratch, blocks)`` fills ``out`` from ``x`` over the
#: ``blocks``, with the workspace arrays its plan asked for.
BlockKernel = Callable[[Array, Array, list[Array], list[Block]], None]

#: dtypes NumPy can execute (float32 and float64 use BLAS, float16 NumPy's own loops).
SUPPORTED_DTYPES = EXECUTABLE_DTYPES

#: Output pixels per kernel block (GEMM rows): OpenBLAS runs near peak from ~1k rows, and
#: much taller GEMMs spill their operands out of cache.
CHUNK_ROWS = 4096
#: Cap on one block's scratch elements (8 MB at float32): keeps gathered buffers in L3.
CHUNK_ELEMENTS = 1 << 21
#: Bias adds that cannot be folded into a GEMM run over ``(rows/r, r*C)`` views with the bias
#: tiled ``r`` times: NumPy's broadcast loop is overhead-bound for short rows of ``C``.
BIAS_TILE = 16


def numpy_dtype(name: str) -> np.dtype[Any]:
    """The NumPy dtype for a convcost dtype name; :class:`~convcost.errors.UnsupportedDtype`
    (located at ``<dtype>``) when NumPy cannot execute it."""
    key = name.strip().lower()
    if key in SUPPORTED_DTYPES:
        return np.dtype(key)
    supported = ", ".join(SUPPORTED_DTYPES)
    if key in ("bfloat16", "int8"):
        message = (f"cannot benchmark {key} with NumPy: it has no BLAS matrix multiply for "
                   f"{key}{' (and no bfloat16 type)' if key == 'bfloat16' else ''}; benchmark "
                   f"with one of {supported} (costs and memory can still be analysed at {key})")
    else:
        message = f"unknown dtype {name!r}; benchmarks support {supported}"
    raise UnsupportedDtype(message, "<dtype>")


def make_input(shape: Shape, batch: int, dtype: np.dtype[Any],
               rng: np.random.Generator) -> Array:
    """A standard-normal NHWC batch ``(batch, h, w, c)`` at ``dtype`` (drawn in float32 for
    float16, so float16 inputs briefly take 6 bytes per element)."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    dtype = np.dtype(dtype)
    gen = dtype if dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.float32
    x: Array = rng.standard_normal((batch, shape.h, shape.w, shape.c), dtype=gen)
    return x.astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Chunking and planning


@dataclass(frozen=True, slots=True)
class Chunking:
    """How a kernel walks its output in blocks: ``samples`` whole samples at a time, or, for
    large maps, ``rows`` rows of one sample at a time."""

    samples: int
    rows: int

    def blocks(self, batch: int, height: int) -> list[Block]:
        """``(n0, n1, h0, h1)`` blocks covering ``batch`` samples of ``height`` rows. Every
        block is contiguous in NHWC order, so a GEMM can write straight into the output."""
        if self.rows >= height:
            return [(n0, min(batch, n0 + self.samples), 0, height)
                    for n0 in range(0, batch, self.samples)]
        return [(n, n + 1, h0, min(height, h0 + self.rows))
                for n in range(batch) for h0 in range(0, height, self.rows)]


def chunking(batch: int, height: int, width: int, row_elements: int,
             elements: int | None = None) -> Chunking:
    """Blocks of about :data:`CHUNK_ROWS` pixels, fewer if a pixel needs ``row_elements``
    scratch elements (at most ``elements`` per block, default :data:`CHUNK_ELEMENTS`): each
    block's buffers then stay cache-sized and the GEMMs stay in the row range where OpenBLAS
    runs near peak."""
    budget = CHUNK_ELEMENTS if elements is None else elements
    pixels = max(1, min(CHUNK_ROWS, budget // max(1, row_elements)))
    per_sample = height * width
    if per_sample <= pixels:
        samples = max(1, min(batch, pixels // per_sample))
        count = -(-batch // samples)
        return Chunking(-(-batch // count), height)  # balanced: no tiny last block
    rows = max(1, pixels // width)
    count = -(-height // rows)
    return Chunking(1, -(-height // count))


# ---------------------------------------------------------------------------------------------
# Workspace and array helpers


#: Bytes of a cache line: the workspace's arrays and :func:`aligned_empty`'s start on this
#: boundary, for BLAS and the SIMD loops.
ALIGN = 64


class Workspace:
    """A growable scratch arena shared by the steps of a program: a call takes all the
    temporary arrays it needs at once. Grown buffers replace (never coexist with) the old one,
    so it holds at most the largest request."""

    def __init__(self) -> None:
        self._buffer: Array = np.empty(0, dtype=np.uint8)

    @property
    def nbytes(self) -> int:
        return int(self._buffer.nbytes)

    @classmethod
    def bytes_for(cls, itemsize: int, shapes: Shapes) -> int:
        """Bytes :meth:`take` needs for ``shapes`` of ``itemsize``-byte elements."""
        total = sum(-(-math.prod(s) * itemsize // ALIGN) * ALIGN for s in shapes)
        return total + ALIGN if shapes else 0

    def reserve(self, nbytes: int) -> None:
        """Grow to at least ``nbytes`` now (so no call pays for it later)."""
        if nbytes > self._buffer.nbytes:
            self._buffer = np.empty(0, dtype=np.uint8)  # release first: never hold both
            self._buffer = np.empty(nbytes, dtype=np.uint8)

    def take(self, dtype: np.dtype[Any], *shapes: tuple[int, ...]) -> list[Array]:
        """Non-overlapping uninitialised arrays of ``shapes``, valid until the next ``take``."""
        sizes = [math.prod(s) * dtype.itemsize for s in shapes]
        offsets, total = [], 0
        for size in sizes:
            offsets.append(total)
            total += -(-size // ALIGN) * ALIGN
        self.reserve(total + ALIGN)
        base = (-self._buffer.ctypes.data) % ALIGN
        return [self._buffer[base + o: base + o + size].view(dtype).reshape(shape)
                for o, size, shape in zip(offsets, sizes, shapes)]


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype[Any]) -> Array:
    """An uninitialised C-contiguous array starting on a 64-byte boundary (NumPy's own are
    16-byte aligned): the compiled SIMD loops' 32-byte loads and stores then never straddle
    cache lines (measured: the 7x7 stem's weights aligned ran 15% faster)."""
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + ALIGN, dtype=np.uint8)  # ALIGN bytes beyond the elements
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def fill_padded(buf: Array, src: Array, top: int, left: int, fill: float) -> None:
    """Copy ``src`` (``..., H, W, C``) into ``buf`` at ``(top, left)`` and set only the border
    frame to ``fill``: the workspace is shared, so nothing outside ``src`` can be assumed."""
    h, w = src.shape[-3], src.shape[-2]
    buf[..., :top, :, :] = fill
    buf[..., top + h:, :, :] = fill
    buf[..., top:top + h, :left, :] = fill
    buf[..., top:top + h, left + w:, :] = fill
    buf[..., top:top + h, left:left + w, :] = src


def prefix(buf: Array, *shape: int) -> Array:
    """The leading ``prod(shape)`` elements of a flat scratch array, as ``shape``."""
    return buf[:math.prod(shape)].reshape(shape)


def add_bias(out: Array, tiled: Array) -> None:
    """``out += bias`` for an ``out`` whose last axis is the channels; ``tiled`` is the bias
    repeated :data:`BIAS_TILE` times."""
    c = out.shape[-1]
    rows = out.size // c
    r = BIAS_TILE
    while rows % r:
        r //= 2
    if out.flags.c_contiguous:
        view = out.reshape(rows // r, r * c)  # a view, so the add lands in ``out``
        view += tiled[:r * c]
    else:
        out += tiled[:c]


class Geometry(NamedTuple):
    """A window step's kernel, stride, dilation and leading padding, unpacked once."""

    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    top: int
    left: int


def geometry(step: Step) -> Geometry:
    top, _, left, _ = step.padding
    return Geometry(*step.kernel_hw, *step.stride_hw, *step.dilation_hw, top, left)


class Phases(NamedTuple):
    """The taps of one kernel axis grouped by stride phase: tap ``k`` reads padded input
    position ``o*s + k*d`` = ``(o + k*d // s)*s + k*d % s``, so after splitting the input into
    ``s`` phase planes (position ``q*s + p`` at ``[p][q]``) every tap reads a contiguous run.

    ``phases[i]`` is plane ``i``'s phase ``p``; ``groups[i] = (plane, j0, jstep, taps)``:
    taps ``taps`` read plane ``plane`` from offset ``j0`` in steps of ``jstep`` (so a group is
    one strided view); ``extent`` is a plane's length (``out + (k - 1)*d // s``)."""

    phases: tuple[int, ...]
    groups: tuple[tuple[int, int, int, tuple[int, ...]], ...]
    extent: int


def phases(kernel: int, stride: int, dilation: int, out: int) -> Phases:
    """:class:`Phases` of one axis of a window step with ``out`` output positions."""
    by_phase: dict[int, list[int]] = {}
    for k in range(kernel):
        by_phase.setdefault(k * dilation % stride, []).append(k)
    order = tuple(sorted(by_phase))
    groups = []
    for plane, p in enumerate(order):
        taps = tuple(by_phase[p])
        js = [k * dilation // stride for k in taps]
        groups.append((plane, js[0], js[1] - js[0] if len(js) > 1 else 1, taps))
    return Phases(order, tuple(groups), out + (kernel - 1) * dilation // stride)


def valid(count: int, size: int, stride: int, offset: int) -> tuple[int, int]:
    """``[lo, hi)`` of ``i`` in ``[0, count)`` with ``0 <= i*stride + offset < size``."""
    lo = max(0, -(offset // stride))  # ceil(-offset / stride)
    hi = min(count, (size - 1 - offset) // stride + 1) if size - 1 - offset >= 0 else 0
    return lo, max(lo, hi)


# ---------------------------------------------------------------------------------------------
# Prepared steps


class PreparedStep:
    """One step ready to run: ``prepared(*xs)`` maps NHWC batch(es) to the NHWC output.

    Subclasses implement :meth:`_run` and, when they have them, :meth:`param_shapes`,
    :meth:`_derive`, :meth:`plan` and :meth:`choose`. ``params`` holds the weights in the
    layouts their class documents.
    """

    #: The step kinds a class runs (the registry in :mod:`convcost.bench.kernels` reads this).
    kinds: ClassVar[frozenset[str]] = frozenset()
    #: The algorithm of a class with only one (classes with several override :meth:`choose`).
    algorithm_name: ClassVar[str] = "elementwise"

    def __init__(self, step: Step, algorithm: str, dtype: np.dtype[Any],
                 workspace: Workspace) -> None:
        self.step = step
        self.algorithm = algorithm
        self.dtype = dtype
        self._workspace = workspace
        self._params: dict[str, Array] = {}
        self._expected = step.operands or (step.input,)
        self.geometry = geometry(step)
        self._plans: dict[int, tuple[list[Block], Shapes]] = {}

    # -- what a step needs, as pure functions of the step (no arrays) -------------------------

    @classmethod
    def choose(cls, step: Step, jit: bool = False) -> str:
        """The algorithm this class runs ``step`` with (never depends on the batch);
        ``jit``: whether the numba kernels may be used (:func:`convcost.bench.kernels.jit.
        enabled_for` the dtype)."""
        return cls.algorithm_name

    @classmethod
    def check_algorithm(cls, step: Step, algorithm: str,
                        dtype: np.dtype[Any] | None = None) -> bool:
        """Whether ``algorithm`` can run ``step`` at ``dtype`` (None: at some dtype); only the
        default, unless overridden."""
        return algorithm == cls.choose(step)

    @classmethod
    def param_shapes(cls, step: Step) -> dict[str, tuple[int, ...]]:
        """Parameter arrays in their public layouts."""
        return {}

    @classmethod
    def weight_elements(cls, step: Step, algorithm: str) -> int:
        """Elements of every array held between calls: parameters plus derived copies."""
        return sum(math.prod(s) for s in cls.param_shapes(step).values())

    @classmethod
    def derive_transient_elements(cls, step: Step, algorithm: str) -> int:
        """Elements allocated for a moment while deriving the weights (not held)."""
        return 0

    @classmethod
    def plan(cls, step: Step, algorithm: str, batch: int) -> tuple[Chunking, Shapes]:
        """The chunking of the kernel and the workspace arrays it takes for ``batch``; the
        kernels request exactly these, so the memory estimate stays truthful."""
        return Chunking(batch, step.output.h), []

    @classmethod
    def block_height(cls, step: Step) -> int:
        """Rows the blocks walk (the output's, or the input's for a scatter)."""
        return step.output.h

    @classmethod
    def temporary_elements(cls, step: Step, batch: int) -> int:
        """Elements a call allocates for a moment besides its output and the workspace."""
        return 0

    # -- preparation --------------------------------------------------------------------------

    def _planned(self, batch: int) -> tuple[list[Block], Shapes]:
        """Blocks and workspace shapes for ``batch``, computed once per batch size (planning
        in Python costs tens of microseconds, a few percent of a fast step)."""
        cached = self._plans.get(batch)
        if cached is None:
            chunk, shapes = self.plan(self.step, self.algorithm, batch)
            cached = (chunk.blocks(batch, self.block_height(self.step)), shapes)
            self._plans[batch] = cached
        return cached

    @property
    def params(self) -> dict[str, Array]:
        """The parameter arrays (read them; change them with :meth:`set_params`)."""
        return dict(self._params)

    @property
    def param_bytes(self) -> int:
        """Bytes of weights held, derived copies included."""
        return self.weight_elements(self.step, self.algorithm) * self.dtype.itemsize

    def set_params(self, **arrays: Array) -> None:
        """Replace parameters (same shapes as :attr:`params`); derived forms are rebuilt."""
        for name, value in arrays.items():
            if name not in self._params:
                raise KeyError(f"{self.step.kind} has no parameter {name!r}; it has "
                               f"{sorted(self._params)}")
            want = self._params[name].shape
            if tuple(np.shape(value)) != want:
                raise ValueError(f"parameter {name!r} must have shape {want}, "
                                 f"got {np.shape(value)}")
            self._params[name] = np.array(value, dtype=self.dtype)
        self._derive()

    def init_params(self, rng: np.random.Generator | None) -> None:
        """Random parameters (weights of variance ``1/fan_in``, biases and bn shifts small),
        or zeros when ``rng`` is None."""
        # Uniform draws with the same variance as N(0, 1/fan_in), in float32 unless float64 is
        # wanted: normal float64 draws of large fc and conv weights (100M+ values) took
        # seconds. float16 is drawn in float32 and cast: 6 bytes per element for a moment.
        draw = np.float64 if self.dtype == np.float64 else np.float32
        for name, shape in self.param_shapes(self.step).items():
            if rng is None:
                self._params[name] = np.zeros(shape, dtype=self.dtype)
                continue
            value = rng.random(shape, dtype=draw)
            value -= draw(0.5)  # uniform on [-1/2, 1/2): standard deviation 1/sqrt(12)
            if name == "weight":
                value *= draw(math.sqrt(12.0 / self._fan_in()))
            elif name == "scale":
                value *= draw(0.2)
                value += draw(1.0)
            else:
                value *= draw(0.2)
            self._params[name] = value.astype(self.dtype, copy=False)
            del value
        self._derive()

    def _fan_in(self) -> int:
        return self.step.input.elements

    def _derive(self) -> None:
        """Rebuild algorithm-specific forms of the parameters (reshapes, regroupings)."""

    # -- running ------------------------------------------------------------------------------

    def _check(self, inputs: tuple[Array, ...]) -> None:
        step = self.step
        if len(inputs) != len(self._expected):
            raise TypeError(f"step {step.path} ({step.text}) takes {len(self._expected)} "
                            f"input(s), got {len(inputs)}")
        for x, shape in zip(inputs, self._expected):
            if x.ndim != 4 or tuple(x.shape[1:]) != (shape.h, shape.w, shape.c):
                raise ValueError(f"step {step.path} ({step.text}) expects NHWC input "
                                 f"(N, {shape.h}, {shape.w}, {shape.c}), got {x.shape}")
            if x.dtype != self.dtype:
                raise ValueError(f"step {step.path} ({step.text}) was prepared for "
                                 f"{self.dtype}, got {x.dtype} input")

    def __call__(self, *inputs: Array) -> Array:
        """Check the inputs against the step, then run (the executor calls :meth:`run`)."""
        self._check(inputs)
        return self.run(*inputs)

    def run(self, *inputs: Array) -> Array:
        """Run without checking the inputs (the executor's fast path)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        step = self.step
        return (f"<{type(self).__name__} {step.path} {step.text!r} {step.input}->{step.output} "
                f"algorithm={self.algorithm}>")
