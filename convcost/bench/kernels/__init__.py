"""NumPy kernels for every step kind, and the registry that picks them.

:func:`prepare_step` turns a program :class:`~convcost.model.program.Step` into a
:class:`~convcost.bench.kernels.base.PreparedStep` (weights allocated, algorithm fixed) that
maps NHWC batches to the step's output. The families:

- :mod:`~convcost.bench.kernels.conv`: ``conv`` (gemm, shifted-gemm, im2col-gemm,
  grouped-im2col-gemm, direct, direct-jit, blocked-jit), ``deconv`` (scatter-gemm), ``fc``
  (gemm);
  depthwise ``direct`` lives in :mod:`~convcost.bench.kernels.depthwise` and the
  phase-planes gather of ``im2col-gemm`` (small ``Kw*Cin``) in
  :mod:`~convcost.bench.kernels.im2col`;
- :mod:`~convcost.bench.kernels.pool`: ``maxpool``/``avgpool`` (window), ``gap`` (reduce);
- :mod:`~convcost.bench.kernels.elementwise`: activations and ``bn`` (elementwise), ``up``
  and ``concat`` (copy), ``add`` and the gate ``mul`` (elementwise),
  ``id``/``dropout``/``droppath`` and ``slice`` views (alias);
- :mod:`~convcost.bench.kernels.modern`: prelu, ``scale``, ``ln``/``gn``/``instancenorm``
  and ``shuffle``.

Compiled kernels (the ``jit`` extra, numba): when numba is installed and the environment
variable ``CONVCOST_JIT`` is not ``0`` (:mod:`~convcost.bench.kernels.jit`), depthwise
convolutions at float32 and float64 run ``direct-jit`` (loops in
:mod:`~convcost.bench.kernels.jitted`) instead of ``direct``, and stems and small-channel
KxK convolutions run ``blocked-jit`` (:mod:`~convcost.bench.kernels.jitted_blocked`)
instead of an im2col GEMM, compiled when the step is prepared and cached on disk; float16
and every other kernel stay NumPy.
:func:`choose_algorithm` is a pure function of the geometry, the dtype and that switch, so
the memory estimate and the run agree. numba is imported only when a ``*-jit`` kernel is
prepared.

Every size comes from the step (``step.output``, ``step.padding``); the tests hold the
independent cross-check of output sizes. A prepared step is not thread-safe.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from convcost.bench.kernels import jit
from convcost.bench.kernels.base import (
    SUPPORTED_DTYPES,
    Array,
    PreparedStep,
    Workspace,
    make_input,
    numpy_dtype,
)
from convcost.bench.kernels.conv import Conv, Deconv, Fc
from convcost.bench.kernels.elementwise import (
    Activation,
    Alias,
    BatchNorm,
    Binary,
    Concat,
    Up,
)
from convcost.bench.kernels.modern import Norm, PerChannel, Shuffle
from convcost.bench.kernels.pool import Gap, Pool
from convcost.errors import InternalError
from convcost.lang.vocab import OP_KINDS
from convcost.model.program import Step

__all__ = [
    "KERNELS",
    "SUPPORTED_DTYPES",
    "Array",
    "PreparedStep",
    "Workspace",
    "choose_algorithm",
    "kernel_class",
    "make_input",
    "numpy_dtype",
    "prepare_step",
    "prepare_transient_bytes",
    "weight_bytes",
    "workspace_bytes",
]

_CLASSES: tuple[type[PreparedStep], ...] = (
    Conv, Deconv, Fc, Pool, Gap, Activation, BatchNorm, Up, Concat, Binary, Alias,
    PerChannel, Norm, Shuffle)

#: Step kind -> the class that runs it.
KERNELS: dict[str, type[PreparedStep]] = {
    kind: cls for cls in _CLASSES for kind in cls.kinds}
assert set(KERNELS) == OP_KINDS, sorted(set(KERNELS) ^ OP_KINDS)


def kernel_class(step: Step) -> type[PreparedStep]:
    """The class that runs ``step``; :class:`~convcost.errors.InternalError` for a kind with
    no kernel (a bug: every op kind has one)."""
    cls = KERNELS.get(step.kind)
    if cls is None:
        raise InternalError(f"no NumPy kernel for step kind {step.kind!r} ({step.path} "
                            f"'{step.text}'); this is a bug in convcost", "<bench>")
    return cls


def choose_algorithm(step: Step, dtype: np.dtype[Any] | str = "float32") -> str:
    """The kernel :func:`prepare_step` uses for ``step`` at ``dtype``: a pure function of its
    geometry and of whether the numba kernels run at ``dtype`` (:func:`jit.enabled_for`);
    independent of the batch size, so memory estimates and executions agree."""
    return kernel_class(step).choose(step, jit.enabled_for(dtype))


def workspace_bytes(step: Step, algorithm: str, batch: int, itemsize: int) -> int:
    """Scratch bytes ``step``'s kernel takes from the workspace for a ``batch``."""
    _, shapes = kernel_class(step).plan(step, algorithm, batch)
    return Workspace.bytes_for(itemsize, shapes)


def prepare_step(step: Step, dtype: np.dtype[Any] | str, rng: np.random.Generator | None,
                 workspace: Workspace | None = None, *, algorithm: str | None = None
                 ) -> PreparedStep:
    """``step`` with random weights (zeros when ``rng`` is None) at ``dtype``, ready to call
    on NHWC batches of any size.

    ``workspace`` is the scratch arena shared by a program's steps (a private one if None).
    ``algorithm`` forces a conv kernel (``gemm`` needs an unpadded 1x1, ``shifted-gemm``
    groups 1, ``direct`` depthwise, ``direct-jit`` depthwise, numba
    and float32 or float64, ``blocked-jit`` groups 1, numba and float32 or float64); by
    default
    :func:`choose_algorithm` decides. Raises :class:`~convcost.errors.UnsupportedDtype` for
    a dtype NumPy cannot execute, ``ValueError`` for an algorithm that cannot run the step.
    """
    np_dtype = numpy_dtype(dtype) if isinstance(dtype, str) else np.dtype(dtype)
    if np_dtype.name not in SUPPORTED_DTYPES:
        numpy_dtype(np_dtype.name)  # raises UnsupportedDtype
    cls = kernel_class(step)
    chosen = cls.choose(step, jit.enabled_for(np_dtype))
    if algorithm is not None and algorithm != chosen:
        if not cls.check_algorithm(step, algorithm, np_dtype):
            raise ValueError(f"algorithm {algorithm!r} cannot run {step.kind} step "
                             f"{step.path} ({step.text})")
        chosen = algorithm
    prepared = cls(step, chosen, np_dtype, workspace if workspace is not None else Workspace())
    prepared.init_params(rng)
    return prepared


def weight_bytes(step: Step, dtype: np.dtype[Any] | str) -> int:
    """Bytes of weights ``step``'s kernel holds at ``dtype`` (derived copies included)."""
    itemsize = np.dtype(dtype).itemsize
    return kernel_class(step).weight_elements(step, choose_algorithm(step, dtype)) * itemsize


def prepare_transient_bytes(step: Step, dtype: np.dtype[Any] | str) -> int:
    """Bytes allocated for a moment while preparing ``step`` (not held afterwards): float16
    weights are drawn in float32 (4 bytes per element of the largest parameter array), and
    some kernels regroup a weight through an intermediate copy."""
    cls = kernel_class(step)
    itemsize = np.dtype(dtype).itemsize
    shapes = cls.param_shapes(step)
    draw = 4 * max((math.prod(s) for s in shapes.values()), default=0) if itemsize == 2 else 0
    return draw + cls.derive_transient_elements(step, choose_algorithm(step, dtype)) * itemsize
