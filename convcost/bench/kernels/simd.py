"""Explicit SIMD vectors for numba-compiled loops (importing this module imports numba).

LLVM's loop vectoriser keeps accumulators in memory: a register-blocked micro-kernel (many
independent sums kept in registers across a reduction, the shape of every fast GEMM and
direct convolution) cannot be written in plain numba. These intrinsics give compiled code a
vector value type, :class:`Vec` (``<lanes x float>`` in LLVM: a register), and the four
operations such a kernel needs: load, broadcast, fused multiply-add and store.

A vector is :func:`lanes` elements of the array's dtype, 256 bits: eight float32 or four
float64 (one AVX2 register; LLVM splits it on narrower hardware and it stays correct).
Indices are flat element offsets into 1-D C-contiguous arrays and are **not checked**: the
caller guarantees ``0 <= i`` and ``i + lanes <= size``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from llvmlite import ir  # type: ignore[import-untyped, import-not-found, unused-ignore]

# Through Any: numba's own annotations of these decorators do not type-check the intrinsics
# (and numba may be absent where mypy runs).
_types: Any = importlib.import_module("numba").types
_cgutils: Any = importlib.import_module("numba.core.cgutils")
_extending: Any = importlib.import_module("numba.extending")
intrinsic: Callable[[Callable[..., Any]], Any] = _extending.intrinsic
_register_model: Callable[[Any], Callable[[type], type]] = _extending.register_model

#: Bytes of one vector (AVX2's 256-bit registers).
VECTOR_BYTES = 32


def lanes(itemsize: int) -> int:
    """Elements of one vector of ``itemsize``-byte values (8 float32, 4 float64)."""
    return VECTOR_BYTES // itemsize


class Vec(_types.Type):  # type: ignore[misc]
    """A SIMD vector of :func:`lanes` elements of ``dtype``, held in a register."""

    def __init__(self, dtype: Any) -> None:
        self.dtype = dtype
        self.lanes = lanes(dtype.bitwidth // 8)
        super().__init__(name=f"Vec({dtype}x{self.lanes})")


@_register_model(Vec)
class _VecModel(_extending.models.PrimitiveModel):  # type: ignore[misc]
    def __init__(self, dmm: Any, fe_type: Vec) -> None:
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


def _pointer(context: Any, builder: Any, array_type: Any, array: Any, index: Any) -> Any:
    """The address of ``array[index]`` (no bounds or wraparound check)."""
    data = context.make_array(array_type)(context, builder, array).data
    return builder.gep(data, [index], inbounds=True)


@intrinsic
def vload(typingctx: Any, array: Any, index: Any) -> Any:
    """``array[index:index + lanes]`` as a vector (unaligned load)."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        vty = context.get_value_type(sig.return_type)
        return builder.load(builder.bitcast(ptr, vty.as_pointer()), align=array.dtype.bitwidth // 8)

    return Vec(array.dtype)(array, index), codegen


@intrinsic
def vbroadcast(typingctx: Any, array: Any, index: Any) -> Any:
    """``array[index]`` in every lane."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        value = builder.load(_pointer(context, builder, sig.args[0], args[0], args[1]))
        vty = context.get_value_type(sig.return_type)
        first = builder.insert_element(ir.Constant(vty, ir.Undefined), value,
                                       ir.Constant(ir.IntType(32), 0))
        zeros = ir.Constant(ir.VectorType(ir.IntType(32), vty.count), [0] * vty.count)
        return builder.shuffle_vector(first, ir.Constant(vty, ir.Undefined), zeros)

    return Vec(array.dtype)(array, index), codegen


@intrinsic
def vfma(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    """``a * b + c`` lane by lane, fused (LLVM's ``llvm.fma``: one instruction with FMA)."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        vty = args[0].type
        bits = 32 if vty.element == ir.FloatType() else 64
        fnty = ir.FunctionType(vty, [vty, vty, vty])
        fn = _cgutils.get_or_insert_function(builder.module, fnty,
                                            f"llvm.fma.v{vty.count}f{bits}")
        return builder.call(fn, args)

    return a(a, b, c), codegen


@intrinsic
def vstore(typingctx: Any, array: Any, index: Any, value: Any) -> Any:
    """``array[index:index + lanes] = value`` (unaligned store)."""

    def codegen(context: Any, builder: Any, sig: Any, args: Any) -> Any:
        ptr = _pointer(context, builder, sig.args[0], args[0], args[1])
        vty = context.get_value_type(sig.args[2])
        builder.store(args[2], builder.bitcast(ptr, vty.as_pointer()),
                      align=array.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return _types.none(array, index, value), codegen
