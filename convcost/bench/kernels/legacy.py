"""NumPy execution of resolved networks, for benchmarks: every layer kind as a fast kernel.

Arrays are NHWC batches ``(N, H, W, C)``. Each layer is *prepared* once (weights allocated,
geometry and algorithm fixed) and then called many times. Convolutions are lowered to a few
large BLAS matrix products (the algorithm is a pure function of the layer, see
:func:`choose_algorithm`):

``gemm``
    unpadded 1x1 convolutions (and ``fc``): one ``(N*H*W, Cin) @ (Cin, Cout)`` product that
    reads the input in place at stride 1.
``shifted-gemm``
    KxK, vertical stride 1, groups 1: the input is expanded along the kernel *width* only,
    into rows of ``Kw*Cin`` values laid out ``(H + pad, N, Wo, Kw*Cin)``. The rows kernel row
    ``ky`` needs are then one contiguous slice, so the layer is ``Kh`` GEMMs with
    ``K = Kw*Cin``, accumulated: a copy ``Kh`` times smaller than im2col's.
``im2col-gemm`` / ``grouped-im2col-gemm``
    any stride, dilation and groups: gather every window into ``(g, N*Ho*Wo, Kh*Kw*Cin/g)``
    and run one GEMM (batched over groups).
``direct``
    depthwise convolutions: one broadcast multiply-add per kernel offset.
``scatter-gemm``
    transposed convolutions: one GEMM ``x @ W`` to every output tap, then one strided add per
    tap into the (cropped) output.

Large outputs are processed in blocks of about :data:`CHUNK_ROWS` pixels so gathered buffers
stay cache-sized. Where a kernel gathers its input anyway, the gathered rows get a column of
ones and the weights a bias row, so the GEMM adds the bias instead of a separate pass.

Temporary buffers come from a workspace shared by the layers of a network, grown on demand and
kept, so repeated calls do not pay for page faults; outputs are always freshly allocated and
never alias the workspace (or the input, except ``id``/``dropout``, which return it). A
prepared layer or network is not thread-safe.

Weights are random: ``N(0, 1/fan_in)`` (variance preserving for linear layers), so activations
keep a sane range in deep chains. ``PreparedLayer.params`` exposes them in documented layouts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from convcost.model.program import ALIAS_KINDS, Branches, Layer, Network, Node, Residual, Shape, iter_layers

__all__ = [
    "PreparedLayer",
    "PreparedNetwork",
    "ShapeMismatchError",
    "SUPPORTED_DTYPES",
    "UnsupportedDtype",
    "choose_algorithm",
    "estimate_peak_bytes",
    "make_input",
    "numpy_dtype",
    "prepare_layer",
    "prepare_network",
]

Array = npt.NDArray[Any]

#: dtypes NumPy can execute; float32 and float64 use BLAS, float16 uses NumPy's own loops.
SUPPORTED_DTYPES = ("float32", "float64", "float16")

#: ``shifted-gemm`` needs a GEMM inner dimension ``Kw*Cin`` at least this large: below it the
#: Kh thin GEMMs run far from peak and one im2col GEMM with ``K = Kh*Kw*Cin`` wins (measured on
#: OpenBLAS, 2 cores: K=64 runs ~80% of peak, K>=192 ~93%).
SHIFTED_MIN_K = 128
#: ... and at least this many output pixels ``Ho*Wo`` per sample: on small maps (7x7) every
#: GEMM is short, one long-K GEMM amortises better and the im2col copy is cheap anyway
#: (measured: 14x14x256 3x3 87% of peak shifted vs 74% im2col; 7x7x512 64% vs 68%).
SHIFTED_MIN_ROWS = 128
#: Output pixels per kernel block (GEMM rows): OpenBLAS runs near peak from ~1k rows, and
#: much taller GEMMs spill their operands out of cache.
CHUNK_ROWS = 4096
#: Cap on one block's scratch elements (8 MB at float32): keeps gathered buffers in L3.
CHUNK_ELEMENTS = 1 << 21


class UnsupportedDtype(ValueError):
    """A dtype that convcost can analyse but NumPy cannot benchmark."""


class ShapeMismatchError(RuntimeError):
    """A layer produced (or was given) a shape different from what shape analysis says."""


def numpy_dtype(name: str) -> np.dtype[Any]:
    """The NumPy dtype for a convcost dtype name; :class:`UnsupportedDtype` if not executable."""
    key = name.strip().lower()
    if key in SUPPORTED_DTYPES:
        return np.dtype(key)
    supported = ", ".join(SUPPORTED_DTYPES)
    if key in ("bfloat16", "int8"):
        raise UnsupportedDtype(
            f"cannot benchmark {key} with NumPy: it has no BLAS matrix multiply for {key}"
            f"{' (and no bfloat16 type)' if key == 'bfloat16' else ''}; benchmark with one of "
            f"{supported} (costs and memory can still be analysed at {key})")
    raise UnsupportedDtype(f"unknown dtype {name!r}; benchmarks support {supported}")


# ---------------------------------------------------------------------------------------------
# Geometry: pure functions of a Layer, shared by the kernels and the memory estimate.


def _floor_out(size: int, kernel: int, stride: int, dilation: int, before: int,
               after: int) -> int:
    """Windows along one axis of a ``before``/``after`` padded input (floor mode)."""
    return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def _pool_out(size: int, kernel: int, stride: int, before: int, after: int, ceil: bool) -> int:
    """Pool windows along one axis; ``ceil`` follows PyTorch (no window starts in the right
    padding)."""
    if not ceil:
        return _floor_out(size, kernel, stride, 1, before, after)
    out = -(-(size + before + after - kernel) // stride) + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return out


def _executed_hw(layer: Layer) -> tuple[int, int]:
    """Output ``(H, W)`` computed from the geometry alone (not from ``layer.output``), so a
    wrong analysed shape shows up as a mismatch instead of being silently obeyed."""
    h, w = layer.input.h, layer.input.w
    kh, kw = layer.kernel_hw
    sh, sw = layer.stride_hw
    dh, dw = layer.dilation_hw
    top, bottom, left, right = layer.padding
    if layer.kind == "conv":
        return (_floor_out(h, kh, sh, dh, top, bottom), _floor_out(w, kw, sw, dw, left, right))
    if layer.kind == "deconv":
        return ((h - 1) * sh + dh * (kh - 1) + 1 - top - bottom,
                (w - 1) * sw + dw * (kw - 1) + 1 - left - right)
    if layer.kind in ("maxpool", "avgpool"):
        return (_pool_out(h, kh, sh, top, bottom, layer.ceil),
                _pool_out(w, kw, sw, left, right, layer.ceil))
    if layer.kind in ("fc", "gap"):
        return 1, 1
    if layer.kind == "up":
        return h * layer.factor, w * layer.factor
    return h, w


def choose_algorithm(layer: Layer) -> str:
    """The kernel :func:`prepare_layer` uses for ``layer``: a pure function of its geometry
    (independent of the batch size, so memory estimates and executions agree)."""
    kind = layer.kind
    if kind == "conv":
        kh, kw = layer.kernel_hw
        cin, groups = layer.input.c, layer.groups
        if groups > 1 and groups == cin:
            return "direct"
        if groups > 1:
            return "grouped-im2col-gemm"
        if (kh, kw) == (1, 1) and layer.padding == (0, 0, 0, 0):
            return "gemm"
        oh, ow = _executed_hw(layer)
        if (kh > 1 and layer.stride_hw[0] == 1 and kw * cin >= SHIFTED_MIN_K
                and oh * ow >= SHIFTED_MIN_ROWS):
            return "shifted-gemm"
        return "im2col-gemm"
    if kind == "deconv":
        return "scatter-gemm"
    if kind == "fc":
        return "gemm"
    if kind in ("maxpool", "avgpool"):
        return "window"
    if kind == "gap":
        return "reduce"
    if kind in ("up", "concat"):
        return "copy"
    if kind in ALIAS_KINDS:
        return "alias"
    return "elementwise"


def _pool_extent(layer: Layer) -> tuple[int, int, int, int]:
    """``(top, Hp, left, Wp)`` of the padded buffer a pool reads: large enough for every
    window, including ceil-mode windows that run past the declared padding."""
    oh, ow = _executed_hw(layer)
    top, _, left, _ = layer.padding
    kh, kw = layer.kernel_hw
    sh, sw = layer.stride_hw
    hp = max(top + layer.input.h, (oh - 1) * sh + kh)
    wp = max(left + layer.input.w, (ow - 1) * sw + kw)
    return top, hp, left, wp


@dataclass(frozen=True, slots=True)
class _Chunking:
    """How a kernel walks its output in blocks: ``samples`` whole samples at a time, or, for
    large maps, ``rows`` rows of one sample at a time."""

    samples: int
    rows: int

    def blocks(self, batch: int, height: int) -> list[tuple[int, int, int, int]]:
        """``(n0, n1, h0, h1)`` blocks covering ``batch`` samples of ``height`` rows. Every
        block is contiguous in NHWC order, so a GEMM can write straight into the output."""
        if self.rows >= height:
            return [(n0, min(batch, n0 + self.samples), 0, height)
                    for n0 in range(0, batch, self.samples)]
        return [(n, n + 1, h0, min(height, h0 + self.rows))
                for n in range(batch) for h0 in range(0, height, self.rows)]


def _chunking(batch: int, height: int, width: int, row_elements: int) -> _Chunking:
    """Blocks of about :data:`CHUNK_ROWS` pixels, fewer if a pixel needs ``row_elements``
    scratch elements: each block's buffers then stay cache-sized and the GEMMs stay in
    the row range where OpenBLAS runs near peak."""
    pixels = max(1, min(CHUNK_ROWS, CHUNK_ELEMENTS // max(1, row_elements)))
    per_sample = height * width
    if per_sample <= pixels:
        samples = max(1, min(batch, pixels // per_sample))
        count = -(-batch // samples)
        return _Chunking(-(-batch // count), height)  # balanced: no tiny last block
    rows = max(1, pixels // width)
    count = -(-height // rows)
    return _Chunking(1, -(-height // count))


def _plan(layer: Layer, algorithm: str, batch: int) -> tuple[_Chunking, list[tuple[int, ...]]]:
    """The chunking of ``layer``'s kernel and the workspace arrays (element shapes) it takes
    for a batch of ``batch``. The kernels request exactly these, so
    :func:`estimate_peak_bytes` stays truthful."""
    n = batch
    h, w, cin = layer.input.h, layer.input.w, layer.input.c
    oh, ow = _executed_hw(layer)
    cout = layer.output.c
    kh, kw = layer.kernel_hw
    dh = layer.dilation_hw[0]
    top, bottom, left, right = layer.padding
    hp, wp = h + top + bottom, w + left + right
    g = layer.groups
    whole = _Chunking(n, oh)
    shapes: list[tuple[int, ...]] = []
    if layer.kind == "conv":
        if algorithm == "gemm":
            # A copy of the (subsampled) input, with the bias column when it folds the bias.
            if layer.stride_hw != (1, 1) or _gemm_folds_bias(layer):
                return whole, [(n * oh * ow * _pitch(cin, layer.bias),)]
            return whole, []
        if algorithm == "shifted-gemm":
            pitch = _pitch(kw * cin, layer.bias)
            chunk = _chunking(n, oh, ow, pitch + 2 * cout)
            block = chunk.samples * chunk.rows * ow
            halo = chunk.samples * (kh - 1) * dh * ow  # extra input rows the taps reach
            shapes = [((block + halo) * pitch,), (block * cout,)]
            if chunk.samples > 1:
                shapes.append((block * cout,))  # accumulator before the NHWC transpose
            return chunk, shapes
        if algorithm in ("im2col-gemm", "grouped-im2col-gemm"):
            pitch = _pitch(kh * kw * (cin // g), layer.bias)
            chunk = _chunking(n, oh, ow, g * pitch + (cout if g > 1 else 0))
            block = chunk.samples * chunk.rows * ow
            shapes = [(g, n, hp, wp, cin // g), (g * block * pitch,)]
            if g > 1:
                shapes.append((g * block * (cout // g),))
            return chunk, shapes
        if algorithm == "direct":
            chunk = _chunking(n, oh, ow, cout)
            return chunk, [(n, hp, wp, cin), (chunk.samples * chunk.rows * ow * cout,)]
    if layer.kind == "deconv":
        chunk = _chunking(n, h, w, kh * kw * cout + (cin if g > 1 else 0))
        block = chunk.samples * chunk.rows * w
        shapes = [(g * block * kh * kw * (cout // g),)]
        if g > 1:
            shapes.append((g * block * (cin // g),))  # group-major copy of the input block
        return chunk, shapes
    if layer.kind in ("maxpool", "avgpool"):
        _, php, _, pwp = _pool_extent(layer)
        return whole, [(n, php, pwp, cin)]
    return whole, shapes


def _gemm_folds_bias(layer: Layer) -> bool:
    """Whether the 1x1 ``gemm`` copies its input with a ones column to fold the bias into
    the GEMM: worth it when the input is copied anyway (stride) or is narrower than the
    output (the copy then costs less than a bias pass over the output)."""
    return layer.bias and (layer.stride_hw != (1, 1) or layer.output.c > layer.input.c)


def _pitch(k: int, bias: bool) -> int:
    """Row length of a gathered GEMM operand with ``k`` inputs: one more for a column of ones
    when there is a bias, which the GEMM then adds for free (a separate broadcast add is a
    full extra pass over the output)."""
    return k + 1 if bias else k


def _with_bias_row(w: Array, bias: Array | None) -> Array:
    """``w`` (``..., K, N``) with ``bias`` (``..., N``) appended as row ``K``: the weights for
    an operand whose last column is ones."""
    if bias is None:
        return w
    return np.concatenate([w, bias.reshape(*w.shape[:-2], 1, w.shape[-1])], axis=-2)


#: Bias adds that cannot be folded into a GEMM run over ``(rows/r, r*C)`` views with the bias
#: tiled ``r`` times: NumPy's broadcast loop is overhead-bound for short rows of ``C``.
_BIAS_TILE = 16


def _add_bias(out: Array, tiled: Array) -> None:
    """``out += bias`` for a C-contiguous ``out`` whose last axis is the channels; ``tiled``
    is the bias repeated :data:`_BIAS_TILE` times."""
    c = out.shape[-1]
    rows = out.size // c
    r = _BIAS_TILE
    while rows % r:
        r //= 2
    if out.flags.c_contiguous:
        view = out.reshape(rows // r, r * c)  # a view, so the add lands in ``out``
        view += tiled[:r * c]
    else:
        out += tiled[:c]


def _prefix(buf: Array, *shape: int) -> Array:
    """The leading ``prod(shape)`` elements of a flat scratch array, as ``shape``."""
    return buf[:math.prod(shape)].reshape(shape)


def _param_shapes(layer: Layer) -> dict[str, tuple[int, ...]]:
    """Parameter arrays of ``layer`` in their public layouts (see :class:`PreparedLayer`)."""
    cin, cout, g = layer.input.c, layer.output.c, layer.groups
    kh, kw = layer.kernel_hw
    shapes: dict[str, tuple[int, ...]] = {}
    if layer.kind == "conv":
        shapes["weight"] = (kh, kw, cin // g, cout)
    elif layer.kind == "deconv":
        shapes["weight"] = (cin, kh, kw, cout // g)
    elif layer.kind == "fc":
        shapes["weight"] = (layer.input.elements, cout)
    elif layer.kind == "bn":
        return {"scale": (cin,), "shift": (cin,)}
    else:
        return {}
    if layer.bias:
        shapes["bias"] = (cout,)
    return shapes


def _weight_elements(layer: Layer, algorithm: str) -> int:
    """Elements of every weight array held: public parameters plus derived copies."""
    shapes = _param_shapes(layer)
    total = sum(math.prod(s) for s in shapes.values())
    folds = algorithm == "gemm" and layer.kind == "conv" and (
        layer.stride_hw != (1, 1) or _gemm_folds_bias(layer))
    if folds or algorithm in ("shifted-gemm", "im2col-gemm", "grouped-im2col-gemm"):
        # Regrouped or bias-extended copies of the weight: at most one full copy + bias rows.
        total += math.prod(shapes["weight"]) + layer.kernel_hw[0] * layer.output.c
    if "bias" in shapes:
        total += _BIAS_TILE * layer.output.c
    return total


# ---------------------------------------------------------------------------------------------
# Workspace


class _Workspace:
    """A growable scratch arena: a call takes all the temporary arrays it needs at once."""

    _ALIGN = 64  # bytes: keep every array cache-line aligned for BLAS and SIMD loops

    def __init__(self) -> None:
        self._buffer: Array = np.empty(0, dtype=np.uint8)

    @property
    def nbytes(self) -> int:
        return int(self._buffer.nbytes)

    def take(self, dtype: np.dtype[Any], *shapes: tuple[int, ...]) -> list[Array]:
        """Non-overlapping uninitialised arrays of ``shapes``, valid until the next ``take``."""
        sizes = [math.prod(s) * dtype.itemsize for s in shapes]
        offsets, total = [], 0
        for size in sizes:
            offsets.append(total)
            total += -(-size // self._ALIGN) * self._ALIGN
        if total + self._ALIGN > self._buffer.nbytes:
            self._buffer = np.empty(total + self._ALIGN, dtype=np.uint8)
        base = (-self._buffer.ctypes.data) % self._ALIGN
        return [self._buffer[base + o: base + o + size].view(dtype).reshape(shape)
                for o, size, shape in zip(offsets, sizes, shapes)]


def _fill_padded(buf: Array, src: Array, top: int, left: int, fill: float) -> None:
    """Copy ``src`` (``..., H, W, C``) into ``buf`` at ``(top, left)`` and set only the border
    frame to ``fill``: the workspace is shared, so nothing outside ``src`` can be assumed."""
    h, w = src.shape[-3], src.shape[-2]
    buf[..., :top, :, :] = fill
    buf[..., top + h:, :, :] = fill
    buf[..., top:top + h, :left, :] = fill
    buf[..., top:top + h, left + w:, :] = fill
    buf[..., top:top + h, left:left + w, :] = src


# ---------------------------------------------------------------------------------------------
# Prepared layers


class _Geometry(NamedTuple):
    """A window layer's kernel, stride, dilation and leading padding, unpacked once."""

    kh: int
    kw: int
    sh: int
    sw: int
    dh: int
    dw: int
    top: int
    left: int


def _geometry(layer: Layer) -> _Geometry:
    top, _, left, _ = layer.padding
    return _Geometry(*layer.kernel_hw, *layer.stride_hw, *layer.dilation_hw, top, left)


class PreparedLayer:
    """One layer ready to run: ``layer(x)`` maps NHWC batch(es) to the NHWC output.

    ``algorithm`` names the method (see the module docstring). ``params`` holds the weights in
    these layouts (output channel ``o`` of a grouped layer belongs to group ``o // (Cout/g)``):

    - conv ``weight``: ``(Kh, Kw, Cin/g, Cout)``; ``bias``: ``(Cout,)``
    - deconv ``weight``: ``(Cin, Kh, Kw, Cout/g)``, input channel ``i`` in group ``i // (Cin/g)``
    - fc ``weight``: ``(H*W*Cin, N)`` rows in NHWC flattening order; ``bias``: ``(N,)``
    - bn ``scale``, ``shift``: ``(C,)`` (inference form ``y = x*scale + shift``)
    """

    def __init__(self, layer: Layer, algorithm: str, dtype: np.dtype[Any],
                 workspace: _Workspace) -> None:
        self.layer = layer
        self.algorithm = algorithm
        self.dtype = dtype
        self._workspace = workspace
        self._params: dict[str, Array] = {}
        self._expected = ((layer.input,) if layer.kind not in ("concat", "add")
                          else tuple(layer.operands))
        self.output_hw = _executed_hw(layer)
        self.geometry = _geometry(layer)
        self._plans: dict[int, tuple[list[tuple[int, int, int, int]],
                                     list[tuple[int, ...]]]] = {}

    def _planned(self, batch: int) -> tuple[list[tuple[int, int, int, int]],
                                            list[tuple[int, ...]]]:
        """Blocks and workspace shapes for ``batch``, computed once per batch size (planning
        in Python costs tens of microseconds, a few percent of a fast layer)."""
        cached = self._plans.get(batch)
        if cached is None:
            chunk, shapes = _plan(self.layer, self.algorithm, batch)
            height = self.layer.input.h if self.layer.kind == "deconv" else self.output_hw[0]
            cached = (chunk.blocks(batch, height), shapes)
            self._plans[batch] = cached
        return cached

    @property
    def params(self) -> dict[str, Array]:
        """The parameter arrays (read them; change them with :meth:`set_params`)."""
        return dict(self._params)

    @property
    def param_bytes(self) -> int:
        """Bytes of weights held, derived copies included."""
        return _weight_elements(self.layer, self.algorithm) * self.dtype.itemsize

    def set_params(self, **arrays: Array) -> None:
        """Replace parameters (same shapes as :attr:`params`); derived forms are rebuilt."""
        for name, value in arrays.items():
            if name not in self._params:
                raise KeyError(f"{self.layer.kind} has no parameter {name!r}; it has "
                               f"{sorted(self._params)}")
            want = self._params[name].shape
            if tuple(np.shape(value)) != want:
                raise ValueError(f"parameter {name!r} must have shape {want}, "
                                 f"got {np.shape(value)}")
            self._params[name] = np.array(value, dtype=self.dtype)
        self._derive()

    def _init_params(self, rng: np.random.Generator) -> None:
        """Random parameters: weights of variance ``1/fan_in``, biases and bn shifts small."""
        # Uniform draws with the same variance as N(0, 1/fan_in), in float32 unless float64 is
        # wanted: normal float64 draws of large fc and conv weights (100M+ values) took seconds.
        draw = np.float64 if self.dtype == np.float64 else np.float32
        for name, shape in _param_shapes(self.layer).items():
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
        self._derive()

    def _fan_in(self) -> int:
        layer = self.layer
        kh, kw = layer.kernel_hw
        if layer.kind == "conv":
            return kh * kw * (layer.input.c // layer.groups)
        if layer.kind == "deconv":  # each output sees about Kh*Kw/s^2 taps of Cin/g channels
            sh, sw = layer.stride_hw
            taps = max(1, (kh // sh) * (kw // sw))
            return taps * (layer.input.c // layer.groups)
        return layer.input.elements

    def _derive(self) -> None:
        """Rebuild algorithm-specific forms of the parameters (reshapes, regroupings)."""

    def _check(self, inputs: tuple[Array, ...]) -> None:
        if len(inputs) != len(self._expected):
            raise TypeError(f"layer {self.layer.path} ({self.layer.text}) takes "
                            f"{len(self._expected)} input(s), got {len(inputs)}")
        for x, shape in zip(inputs, self._expected):
            if x.ndim != 4 or tuple(x.shape[1:]) != (shape.h, shape.w, shape.c):
                raise ValueError(f"layer {self.layer.path} ({self.layer.text}) expects NHWC "
                                 f"input (N, {shape.h}, {shape.w}, {shape.c}), got {x.shape}")
            if x.dtype != self.dtype:
                raise ValueError(f"layer {self.layer.path} ({self.layer.text}) was prepared "
                                 f"for {self.dtype}, got {x.dtype} input")

    def __call__(self, *inputs: Array) -> Array:
        self._check(inputs)
        return self._run(*inputs)

    def _run(self, *inputs: Array) -> Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"<PreparedLayer {self.layer.path} {self.layer.text!r} {self.layer.input}->"
                f"{self.layer.output} algorithm={self.algorithm}>")


class _Conv(PreparedLayer):
    """Convolution with one of: gemm, shifted-gemm, (grouped-)im2col-gemm, direct."""

    def _derive(self) -> None:
        w = self._params["weight"]
        kh, kw, cg, cout = w.shape
        g = self.layer.groups
        # _w2 is the weight in the layout the chosen kernel multiplies by.
        if self.algorithm == "gemm":
            self._w2: Array = w.reshape(cg, cout)
            copies = self.layer.stride_hw != (1, 1) or _gemm_folds_bias(self.layer)
            self._w0 = _with_bias_row(self._w2, self._params.get("bias")) if copies else self._w2
        elif self.algorithm == "shifted-gemm":
            self._w2 = w.reshape(kh, kw * cg, cout)
            # Kernel row 0 also multiplies the ones column: it adds the bias.
            self._w0 = _with_bias_row(self._w2[0], self._params.get("bias"))
        elif self.algorithm == "direct":
            # Depthwise: output c*m + j reads input channel c, so (Kh, Kw, C, m) is a view.
            self._w2 = w.reshape(kh, kw, g, cout // g)
        else:
            cog = cout // g
            # (Kh, Kw, Cg, g, Cog) -> (g, Kh*Kw*Cg, Cog): rows in the im2col column order.
            regrouped = np.ascontiguousarray(
                w.reshape(kh, kw, cg, g, cog).transpose(3, 0, 1, 2, 4)).reshape(g, -1, cog)
            bias = self._params.get("bias")
            self._w2 = _with_bias_row(regrouped, None if bias is None else bias.reshape(g, cog))
        self._b = self._params.get("bias")
        self._b_tiled = None if self._b is None else np.tile(self._b, _BIAS_TILE)
        methods: dict[str, Callable[[Array, Array], None]] = {
            "gemm": self._gemm, "shifted-gemm": self._shifted, "im2col-gemm": self._im2col,
            "grouped-im2col-gemm": self._im2col, "direct": self._direct}
        self._method = methods[self.algorithm]

    def _run(self, *inputs: Array) -> Array:
        x = inputs[0]
        oh, ow = self.output_hw
        out: Array = np.empty((x.shape[0], oh, ow, self.layer.output.c), dtype=self.dtype)
        self._method(x, out)
        return out

    def _gemm(self, x: Array, out: Array) -> None:
        n, _, _, cin = x.shape
        sh, sw = self.layer.stride_hw
        flat = out.reshape(-1, out.shape[3])
        shapes = self._planned(n)[1]
        if not shapes:
            # For contiguous x (the usual case) the reshape is a view: the GEMM reads in place.
            np.matmul(x.reshape(-1, cin), self._w2, out=flat)
            if self._b_tiled is not None:
                _add_bias(flat, self._b_tiled)
            return
        pitch = _pitch(cin, self._b is not None)
        (buf,) = self._workspace.take(self.dtype, *shapes)
        xs = buf.reshape(n, out.shape[1], out.shape[2], pitch)
        xs[..., :cin] = x[:, ::sh, ::sw]
        if pitch > cin:
            xs[..., cin] = 1  # the bias column: the GEMM adds the bias
        np.matmul(xs.reshape(-1, pitch), self._w0, out=flat)

    def _shifted(self, x: Array, out: Array) -> None:
        layer = self.layer
        n, _, _, cin = x.shape
        oh, ow = self.output_hw
        kh, kw, _, sw, dh, dw, top, left = self.geometry
        cout = layer.output.c
        k = kw * cin
        pitch = _pitch(k, self._b is not None)
        blocks, shapes = self._planned(n)
        bufs = self._workspace.take(self.dtype, *shapes)
        x = np.ascontiguousarray(x)  # the gather below relies on NHWC strides
        for n0, n1, h0, h1 in blocks:
            nb, hb = n1 - n0, h1 - h0
            hr = hb + (kh - 1) * dh  # padded input rows this block reads (stride 1)
            # rows[r, n, wo, kx*Cin + c] = xpad[n, h0 + r, wo*sw + kx*dw, c]: the Kw taps of
            # an output pixel side by side, so kernel row ky needs the contiguous row slice
            # starting at ky*dh: Kh GEMMs with K = Kw*Cin and no im2col over kernel rows.
            rows = _prefix(bufs[0], hr, nb, ow, pitch)
            if pitch > k:
                rows[..., k] = 1  # the bias column
            _gather_rows(rows[..., :k], x[n0:n1], h0 - top, left, sw, dw, kw)
            flat = rows.reshape(hr * nb * ow, pitch)
            step = nb * ow  # flat rows per input row
            block = hb * step
            if nb == 1:
                acc = out[n0, h0:h1].reshape(block, cout)  # contiguous: write in place
            else:
                acc = _prefix(bufs[2], block, cout)
            tmp = _prefix(bufs[1], block, cout)
            np.matmul(flat[:block], self._w0, out=acc)  # kernel row 0 and the bias
            for ky in range(1, kh):
                part = flat[ky * dh * step:ky * dh * step + block, :k]
                np.matmul(part, self._w2[ky], out=tmp)
                acc += tmp
            if nb > 1:
                out[n0:n1, h0:h1] = acc.reshape(hb, nb, ow, cout).transpose(1, 0, 2, 3)

    def _im2col(self, x: Array, out: Array) -> None:
        layer = self.layer
        n, h, w, cin = x.shape
        oh, ow = self.output_hw
        kh, kw, sh, sw, dh, dw, top, left = self.geometry
        g = layer.groups
        cg, cout = cin // g, layer.output.c
        cog = cout // g
        k = kh * kw * cg
        pitch = _pitch(k, self._b is not None)
        blocks, shapes = self._planned(n)
        bufs = self._workspace.take(self.dtype, *shapes)
        xpad = bufs[0]
        # Group-major padded copy (g, N, Hp, Wp, Cg): each group's windows are then plain
        # strided views, and for groups == 1 this is just the padded input.
        _fill_padded(xpad, x.reshape(n, h, w, g, cg).transpose(3, 0, 1, 2, 4), top, left, 0.0)
        item = xpad.itemsize
        gs, ns, hs, ws, _ = xpad.strides
        for n0, n1, h0, h1 in blocks:
            nb, hb = n1 - n0, h1 - h0
            block = nb * hb * ow
            # col[g, n, h, w, (ky, kx, c)]: every window as one row, plus the bias column.
            col = _prefix(bufs[1], g, nb, hb, ow, pitch)
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
                res = _prefix(bufs[2], g, block, cog)
                np.matmul(cols, self._w2, out=res)
                acc = dest.reshape(block, cout)
                acc.reshape(nb, hb, ow, g, cog)[...] = \
                    res.reshape(g, nb, hb, ow, cog).transpose(1, 2, 3, 0, 4)

    def _direct(self, x: Array, out: Array) -> None:
        layer = self.layer
        n, _, _, c = x.shape
        oh, ow = self.output_hw
        kh, kw, sh, sw, dh, dw, top, left = self.geometry
        mult = layer.output.c // c
        blocks, shapes = self._planned(n)
        xpad, tmpbuf = self._workspace.take(self.dtype, *shapes)
        _fill_padded(xpad, x, top, left, 0.0)
        for n0, n1, h0, h1 in blocks:
            nb, hb = n1 - n0, h1 - h0
            acc = out[n0:n1, h0:h1].reshape(nb, hb, ow, c, mult)
            tmp = _prefix(tmpbuf, nb, hb, ow, c, mult)
            for ky in range(kh):
                r0 = h0 * sh + ky * dh
                for kx in range(kw):
                    win = xpad[n0:n1, r0:r0 + (hb - 1) * sh + 1:sh,
                               kx * dw:kx * dw + (ow - 1) * sw + 1:sw, :, None]
                    if ky == 0 and kx == 0:
                        np.multiply(win, self._w2[ky, kx], out=acc)
                    else:
                        np.multiply(win, self._w2[ky, kx], out=tmp)
                        acc += tmp
            if self._b_tiled is not None:
                _add_bias(acc.reshape(nb * hb * ow, c * mult), self._b_tiled)


class _Deconv(PreparedLayer):
    """Transposed convolution: one GEMM to all taps, then a strided add per tap."""

    def _derive(self) -> None:
        w = self._params["weight"]
        cin, kh, kw, cog = w.shape
        g = self.layer.groups
        self._w2: Array = w.reshape(g, cin // g, kh * kw * cog)  # a view: no copy
        b = self._params.get("bias")
        self._b_tiled = None if b is None else np.tile(b, _BIAS_TILE)

    def _run(self, *inputs: Array) -> Array:
        x = inputs[0]
        layer = self.layer
        n, h, w, cin = x.shape
        oh, ow = self.output_hw
        kh, kw, sh, sw, dh, dw, top, left = self.geometry
        g = layer.groups
        cg, cout = cin // g, layer.output.c
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
                xg = _prefix(bufs[1], g, m, cg)
                xg[...] = block.reshape(m, g, cg).transpose(1, 0, 2)
            taps = _prefix(bufs[0], g, m, kh * kw * cog)
            np.matmul(xg, self._w2, out=taps)
            # taps7[n, h, w, ky, kx, g, :]: input pixel (h, w)'s contribution through (ky, kx).
            taps7 = taps.reshape(g, nb, hb, w, kh, kw, cog).transpose(1, 2, 3, 4, 5, 0, 6)
            dest = out[n0:n1]
            for ky in range(kh):
                # Input row h0 + i lands on output row (h0 + i)*sh + ky*dh - top.
                hlo, hhi, o_h = _tap_range(hb, oh, sh, h0 * sh + ky * dh - top)
                if hlo >= hhi:
                    continue
                for kx in range(kw):
                    wlo, whi, o_w = _tap_range(w, ow, sw, kx * dw - left)
                    if wlo >= whi:
                        continue
                    dest[:, o_h:o_h + (hhi - hlo - 1) * sh + 1:sh,
                         o_w:o_w + (whi - wlo - 1) * sw + 1:sw] += \
                        taps7[:, hlo:hhi, wlo:whi, ky, kx]
        result = out.reshape(n, oh, ow, cout)
        if self._b_tiled is not None:
            _add_bias(result, self._b_tiled)
        return result


def _gather_rows(rows: Array, x: Array, row0: int, left: int, sw: int, dw: int,
                 kw: int) -> None:
    """``rows[r, n, wo, kx*C + c] = x[n, row0 + r, wo*sw + kx*dw - left, c]``, zero outside
    ``x``: the width-expanded rows of ``shifted-gemm`` read straight from the unpadded input
    (a padded copy would be one more pass over memory)."""
    hr, _, ow, _ = rows.shape
    _, h, w, c = x.shape
    r_lo, r_hi = max(0, -row0), max(0, min(hr, h - row0))
    if r_lo >= r_hi:
        rows[...] = 0
        return
    rows[:r_lo] = 0
    rows[r_hi:] = 0
    src = x[:, row0 + r_lo:row0 + r_hi].transpose(1, 0, 2, 3)  # (rows, n, W, C) view
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
            lo, hi, iw = _tap_range(c1 - c0, w, sw, c0 * sw + kx * dw - left)
            part = dst[:, :, c0:c1, kx * c:(kx + 1) * c]
            part[:, :, :lo] = 0
            part[:, :, hi:] = 0
            if hi > lo:
                part[:, :, lo:hi] = src[:, :, iw:iw + (hi - lo - 1) * sw + 1:sw]


def _tap_range(size: int, out_size: int, stride: int, offset: int) -> tuple[int, int, int]:
    """Inputs ``i`` in ``[lo, hi)`` with ``0 <= i*stride + offset < out_size``, and the output
    index of ``lo`` (a transposed convolution's scatter along one axis)."""
    lo = max(0, -(offset // stride))  # ceil(-offset / stride)
    hi = min(size, (out_size - 1 - offset) // stride + 1)
    hi = max(hi, lo)
    return lo, hi, lo * stride + offset


class _Fc(PreparedLayer):
    def _derive(self) -> None:
        self._w = self._params["weight"]
        self._b = self._params.get("bias")

    def _run(self, *inputs: Array) -> Array:
        x = inputs[0]
        n = x.shape[0]
        out: Array = np.matmul(x.reshape(n, -1), self._w)
        if self._b is not None:
            out += self._b
        return out.reshape(n, 1, 1, -1)


class _Pool(PreparedLayer):
    """Max or average pooling: a max/sum over kernel offsets of strided window views."""

    def _derive(self) -> None:
        layer = self.layer
        if layer.kind != "avgpool":
            return
        oh, ow = self.output_hw
        kh, kw = layer.kernel_hw
        sh, sw = layer.stride_hw
        top, bottom, left, right = layer.padding
        same = layer.pad_mode == "same"
        counts = []
        for out, k, s, before, after, size in ((oh, kh, sh, top, bottom, layer.input.h),
                                               (ow, kw, sw, left, right, layer.input.w)):
            start = np.arange(out) * s - before
            if same:  # TensorFlow: only real pixels count
                count = np.minimum(start + k, size) - np.maximum(start, 0)
            else:  # PyTorch count_include_pad: padding counts, beyond the padded input not
                count = np.minimum(start + k, size + after) - start
            counts.append(count)
        divisor = counts[0][:, None] * counts[1][None, :]
        self._inv = (1.0 / divisor).astype(self.dtype)[:, :, None]

    def _run(self, *inputs: Array) -> Array:
        x = inputs[0]
        layer = self.layer
        n = x.shape[0]
        oh, ow = self.output_hw
        kh, kw = layer.kernel_hw
        sh, sw = layer.stride_hw
        top, _, left, _ = _pool_extent(layer)
        is_max = layer.kind == "maxpool"
        (xpad,) = self._workspace.take(self.dtype, *self._planned(n)[1])
        _fill_padded(xpad, x, top, left, -np.inf if is_max else 0.0)
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


class _Simple(PreparedLayer):
    """Layers without geometry: an element-wise or copying function of the input(s)."""

    def __init__(self, layer: Layer, algorithm: str, dtype: np.dtype[Any],
                 workspace: _Workspace) -> None:
        super().__init__(layer, algorithm, dtype, workspace)
        self._fn: Callable[..., Array] = getattr(self, "_k_" + layer.kind)

    def _derive(self) -> None:
        pass

    def _run(self, *inputs: Array) -> Array:
        return self._fn(*inputs)

    # Each kernel writes into one fresh output and works in place on it, so no call allocates
    # more than its output.
    def _k_id(self, x: Array) -> Array:
        return x

    _k_dropout = _k_id  # inference: identity, aliasing the input like the memory model says

    def _k_relu(self, x: Array) -> Array:
        out: Array = np.maximum(x, 0)
        return out

    def _k_relu6(self, x: Array) -> Array:
        out: Array = np.clip(x, 0, 6)
        return out

    def _k_tanh(self, x: Array) -> Array:
        out: Array = np.tanh(x)
        return out

    def _k_sigmoid(self, x: Array) -> Array:
        # 0.5*(1 + tanh(x/2)): no overflow warnings for large |x|, unlike 1/(1+exp(-x)).
        out: Array = np.multiply(x, 0.5)
        np.tanh(out, out=out)
        out += 1
        out *= 0.5
        return out

    def _k_silu(self, x: Array) -> Array:
        out = self._k_sigmoid(x)
        out *= x
        return out

    def _k_gelu(self, x: Array) -> Array:
        # tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        out: Array = np.multiply(x, x)
        out *= 0.044715
        out += 1
        out *= x
        out *= math.sqrt(2 / math.pi)
        np.tanh(out, out=out)
        out += 1
        out *= x
        out *= 0.5
        return out

    def _k_softmax(self, x: Array) -> Array:
        # Over channels; subtracting the max keeps exp from overflowing.
        out: Array = np.subtract(x, x.max(axis=3, keepdims=True))
        np.exp(out, out=out)
        out /= out.sum(axis=3, keepdims=True)
        return out

    def _k_bn(self, x: Array) -> Array:
        out: Array = np.multiply(x, self._params["scale"])
        out += self._params["shift"]
        return out

    def _k_gap(self, x: Array) -> Array:
        # NumPy accumulates float16 means in float32 and returns float16.
        out: Array = x.mean(axis=(1, 2), keepdims=True)
        return out

    def _k_up(self, x: Array) -> Array:
        n, h, w, c = x.shape
        f = self.layer.factor
        out: Array = np.empty((n, h, f, w, f, c), dtype=self.dtype)
        out[...] = x[:, :, None, :, None, :]  # one broadcasting copy: nearest neighbour
        return out.reshape(n, h * f, w * f, c)

    def _k_concat(self, *xs: Array) -> Array:
        out: Array = np.concatenate(xs, axis=3)
        return out

    def _k_add(self, a: Array, b: Array) -> Array:
        out: Array = np.add(a, b)
        return out


def _layer_class(kind: str) -> type[PreparedLayer]:
    if kind == "conv":
        return _Conv
    if kind == "deconv":
        return _Deconv
    if kind == "fc":
        return _Fc
    if kind in ("maxpool", "avgpool"):
        return _Pool
    return _Simple


def prepare_layer(layer: Layer, dtype: np.dtype[Any], rng: np.random.Generator,
                  algorithm: str | None = None, *,
                  _workspace: _Workspace | None = None) -> PreparedLayer:
    """``layer`` with random weights at ``dtype``, ready to call on NHWC batches.

    ``algorithm`` forces a conv kernel (``gemm`` needs an unpadded 1x1, ``shifted-gemm`` vertical
    stride 1 and groups 1, ``direct`` depthwise); by default :func:`choose_algorithm` decides
    (the choice never depends on the batch size; any batch works at call time).
    """
    dtype = np.dtype(dtype)
    if dtype.name not in SUPPORTED_DTYPES:
        raise UnsupportedDtype(f"cannot execute {dtype.name}; use one of "
                               f"{', '.join(SUPPORTED_DTYPES)}")
    chosen = choose_algorithm(layer)
    if algorithm is not None and algorithm != chosen:
        _check_forced(layer, algorithm)
        chosen = algorithm
    prepared = _layer_class(layer.kind)(layer, chosen, dtype, _workspace or _Workspace())
    prepared._init_params(rng)
    return prepared


def _check_forced(layer: Layer, algorithm: str) -> None:
    ok = {
        "gemm": layer.kernel_hw == (1, 1) and layer.padding == (0, 0, 0, 0)
        and layer.groups == 1,
        "shifted-gemm": layer.stride_hw[0] == 1 and layer.groups == 1,
        "im2col-gemm": layer.groups == 1,
        "grouped-im2col-gemm": True,
        "direct": layer.groups == layer.input.c,
    }
    if layer.kind != "conv" or not ok.get(algorithm, False):
        raise ValueError(f"algorithm {algorithm!r} cannot run {layer.kind} layer "
                         f"{layer.path} ({layer.text})")


# ---------------------------------------------------------------------------------------------
# Networks


class PreparedNetwork:
    """A network whose layers are prepared; ``net(x)`` runs the execution tree on ``x``.

    Branches run in order and are concatenated; a residual block runs its body, then its
    shortcut (identity when empty), then the add. Every input and output shape is checked
    against the analysed shapes (:class:`ShapeMismatchError`).
    """

    def __init__(self, network: Network, layers: list[PreparedLayer]) -> None:
        self.network = network
        self.layers = layers

    def __call__(self, x: Array) -> Array:
        want = self.network.input
        if x.ndim != 4 or tuple(x.shape[1:]) != (want.h, want.w, want.c):
            raise ValueError(f"network {self.network.name} expects NHWC input "
                             f"(N, {want.h}, {want.w}, {want.c}), got {x.shape}")
        steps = iter(self.layers)
        return self._run(self.network.nodes, x, steps)

    def _run(self, nodes: tuple[Node, ...], x: Array, steps: Any) -> Array:
        for node in nodes:
            if isinstance(node, Layer):
                x = self._step(next(steps), x)
            elif isinstance(node, Branches):
                outs = [self._run(branch, x, steps) for branch in node.branches]
                x = self._step(next(steps), *outs)
            else:
                assert isinstance(node, Residual)
                body = self._run(node.body, x, steps)
                short = self._run(node.shortcut, x, steps)
                x = self._step(next(steps), body, short)
        return x

    @staticmethod
    def _step(prepared: PreparedLayer, *inputs: Array) -> Array:
        layer = prepared.layer
        for x, shape in zip(inputs, prepared._expected):
            _compare(layer, "input", shape, x)
        y = prepared(*inputs)
        _compare(layer, "output", layer.output, y)
        return y


def _compare(layer: Layer, role: str, shape: Shape, x: Array) -> None:
    if tuple(x.shape[1:]) != (shape.h, shape.w, shape.c):
        actual = "x".join(str(d) for d in x.shape[1:])
        raise ShapeMismatchError(
            f"layer {layer.path} ({layer.text}): analysed {role} shape {shape} but execution "
            f"{'produced' if role == 'output' else 'gave it'} {actual} (batch {x.shape[0]})")


def prepare_network(network: Network, dtype: np.dtype[Any],
                    rng: np.random.Generator) -> PreparedNetwork:
    """Every layer of ``network`` prepared at ``dtype``, sharing one scratch workspace."""
    workspace = _Workspace()
    layers = [prepare_layer(layer, dtype, rng, _workspace=workspace)
              for layer in network.layers()]
    return PreparedNetwork(network, layers)


def make_input(shape: Shape, batch: int, dtype: np.dtype[Any],
               rng: np.random.Generator) -> Array:
    """A standard-normal NHWC batch ``(batch, h, w, c)`` at ``dtype``."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    dtype = np.dtype(dtype)
    gen = dtype if dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.float32
    x: Array = rng.standard_normal((batch, shape.h, shape.w, shape.c), dtype=gen)
    return x.astype(dtype, copy=False)


# ---------------------------------------------------------------------------------------------
# Memory estimate


@dataclass(frozen=True, slots=True)
class _Live:
    """Running maxima of the memory walk, in elements."""

    activations: int
    scratch: int


def estimate_peak_bytes(network: Network, batch: int, dtype_bytes: int) -> int:
    """Conservative peak bytes of running ``network`` on a ``batch`` with this executor.

    All weights (derived copies included) + the most activation elements live at once (the
    caller's input, held branch/residual tensors, the layer's inputs and output, plus one
    output-sized temporary) + the largest workspace of any layer. Allocates nothing.
    """
    weights = sum(_weight_elements(layer, choose_algorithm(layer))
                  for layer in network.layers())
    held_input = network.input.elements * batch
    live = _walk(network.nodes, batch, held_input)
    return (weights + live.activations + live.scratch) * dtype_bytes


def _walk(nodes: tuple[Node, ...], batch: int, held: int) -> _Live:
    """Peak of ``nodes`` run while ``held`` elements are kept alive elsewhere."""
    peak, scratch = 0, 0
    for node in nodes:
        if isinstance(node, Layer):
            ins = sum(s.elements for s in node.operands) if node.operands else node.input.elements
            out = 0 if node.kind in ALIAS_KINDS else node.output.elements
            # + out again: element-wise kernels may make one output-sized temporary.
            peak = max(peak, held + (ins + 2 * out) * batch)
            algorithm = choose_algorithm(node)
            scratch = max(scratch, sum(math.prod(s) for s in _plan(node, algorithm, batch)[1]))
        elif isinstance(node, Branches):
            x = node.concat.input.elements * batch
            done = 0
            for branch, shape in zip(node.branches, node.concat.operands):
                sub = _walk(branch, batch, held + x + done)
                peak, scratch = max(peak, sub.activations), max(scratch, sub.scratch)
                done += shape.elements * batch
            sub = _walk((node.concat,), batch, held)
            peak, scratch = max(peak, sub.activations), max(scratch, sub.scratch)
        else:
            x = _block_input(node).elements * batch  # kept for the shortcut
            sub = _walk(node.body, batch, held + x)
            peak, scratch = max(peak, sub.activations), max(scratch, sub.scratch)
            body = node.add.operands[0].elements * batch
            sub = _walk(node.shortcut, batch, held + x + body)
            peak, scratch = max(peak, sub.activations), max(scratch, sub.scratch)
            sub = _walk((node.add,), batch, held)
            peak, scratch = max(peak, sub.activations), max(scratch, sub.scratch)
    return _Live(peak, scratch)


def _block_input(block: Residual) -> Shape:
    """The input shape of a residual block (the add only records the body's output)."""
    first = next(iter_layers(block.body), None)
    return first.input if first is not None else block.add.input
