"""Output sizes and padding of windowed layers: the one copy of these formulas.

Per spatial axis, for an input of size I, kernel K, stride s, dilation d (the contract's
"Output size" section):

- ``same``: O = ceil(I / s), padded as TensorFlow does (the odd pixel of padding goes to the
  bottom/right);
- explicit padding P (``valid``: P = 0): O = floor((I + 2P - d*(K-1) - 1) / s) + 1;
- ``ceil``: O = ceil((I + 2P - K) / s) + 1, minus 1 if (O - 1)*s >= I + P (PyTorch's rule: no
  window may start inside the right padding);
- transposed convolution: O = (I - 1)*s - 2P + d*(K-1) + 1; with ``same``, O = I*s.

The shape resolver uses these to size every step; the NumPy kernels take sizes and padding
from the step. The tests hold an independent brute-force cross-check.
"""

from __future__ import annotations


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int, int]:
    """``(out, before, after)`` for TensorFlow ``same`` padding along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
    return out, total // 2, total - total // 2


def explicit_out(size: int, kernel: int, stride: int, dilation: int, pad: int) -> int:
    """Output size along one axis with explicit padding ``pad`` on both sides (floor mode)."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def ceil_out(size: int, kernel: int, stride: int, pad: int) -> int:
    """PyTorch's ``ceil_mode`` output size: no window may start inside the right padding."""
    out = -(-(size + 2 * pad - kernel) // stride) + 1
    if (out - 1) * stride >= size + pad:
        out -= 1
    return out


def deconv_out(size: int, kernel: int, stride: int, dilation: int,
               padding: str | tuple[int, int], axis: int) -> tuple[int, int, int]:
    """``(out, crop_before, crop_after)`` of a transposed convolution along one axis.

    The full output is ``(I-1)*s + d*(K-1) + 1``; ``same`` crops it to ``I*s`` (a negative
    crop appends zeros), explicit ``P`` crops ``P`` at each side.
    """
    full = (size - 1) * stride + dilation * (kernel - 1) + 1
    if padding == "same":
        total = full - size * stride
        before = total // 2 if total >= 0 else 0
        return size * stride, before, total - before
    pad = padding[axis] if isinstance(padding, tuple) else 0  # 'valid'
    return full - 2 * pad, pad, pad


def window_extent(size: int, out: int, kernel: int, stride: int, before: int) -> int:
    """Length of the padded input a pool's ``out`` windows read along one axis: at least the
    input with its leading padding, and long enough for ceil-mode windows that run past it."""
    return max(before + size, (out - 1) * stride + kernel)
