"""One step written back as one layer of the chain language, from its kind and attributes
(never from ``Step.text``), so that resolving the text gives the step's geometry again."""

from __future__ import annotations

from convcost.errors import SpecError
from convcost.importers.structure import structure_error
from convcost.lang.vocab import ACTIVATION_KINDS, ALIAS_KINDS
from convcost.model.geometry import deconv_out, same_padding
from convcost.model.program import Program, Step

#: Kinds written as their bare name: no options, no counts.
_BARE = (ACTIVATION_KINDS | ALIAS_KINDS | {"bn", "scale", "gap"}) - {"slice"}


def layer_text(program: Program, step: Step) -> str:
    """``step`` as a layer, e.g. ``3x3(64, s=2, nobias)`` or ``maxpool3x3(s=2, p=1)``.

    Raises :class:`SpecError` naming the step's node when no layer writes it (a channel
    slice outside a split, padding that is neither symmetric nor ``same``).
    """
    kind = step.kind
    if kind in _BARE:
        return kind
    if kind in ("conv", "deconv"):
        return _conv(program, step)
    if kind in ("maxpool", "avgpool"):
        return _pool(program, step)
    if kind == "fc":
        return f"fc({step.output.c}{'' if step.bias else ', nobias'})"
    if kind == "up":
        return f"up{step.factor}"
    if kind == "shuffle":
        return f"shuffle({step.groups})"
    if kind == "gn":
        return f"gn({step.groups}{'' if step.affine else ', noaffine'})"
    if kind == "ln":
        return "ln" if step.affine else "ln(noaffine)"
    if kind == "instancenorm":
        return "instancenorm(affine)" if step.affine else "instancenorm"
    if kind == "slice":
        raise structure_error(program, step, f"a channel slice [{step.channels[0]}:"
                                             f"{step.channels[1]}] is only written as a part of "
                                             f"split[...] (equal parts, in order, concatenated)")
    raise structure_error(program, step, f"no layer of the chain language is a '{kind}' step")


def _pair(values: tuple[int, int]) -> str:
    return str(values[0]) if values[0] == values[1] else f"{values[0]}x{values[1]}"


def _conv(program: Program, step: Step) -> str:
    cin, cout = step.input.c, step.output.c
    if step.groups == cin and cin > 1:
        args = ["dw"] if cout == cin else [str(cout), "dw"]
    else:
        args = [str(cout)] + ([f"g={step.groups}"] if step.groups > 1 else [])
    if step.stride_hw != (1, 1):
        args.append(f"s={_pair(step.stride_hw)}")
    if step.dilation_hw != (1, 1):
        args.append(f"d={_pair(step.dilation_hw)}")
    pad = _padding(program, step)
    if pad:
        args.append(pad)
    if not step.bias:
        args.append("nobias")
    kernel = f"{step.kernel_hw[0]}x{step.kernel_hw[1]}"
    return f"{'deconv' if step.kind == 'deconv' else ''}{kernel}({', '.join(args)})"


def _pool(program: Program, step: Step) -> str:
    args = []
    if step.stride_hw != step.kernel_hw:
        args.append(f"s={_pair(step.stride_hw)}")
    pad = _padding(program, step)
    if pad:
        args.append(pad)
    if step.ceil:
        if not pad:
            raise structure_error(program, step, "ceil mode with 'same' padding cannot be "
                                                 "written")
        args.append("ceil")
    kernel = f"{step.kernel_hw[0]}x{step.kernel_hw[1]}"
    return f"{step.kind}{kernel}" + (f"({', '.join(args)})" if args else "")


def _padding(program: Program, step: Step) -> str:
    """The ``p=`` option ('' for the default ``same``)."""
    if step.pad_mode == "same":
        return ""
    if not step.ceil and step.padding == _same(step) and \
            (step.kind != "avgpool" or not any(step.padding)):
        # PyTorch's padding=1 on a 3x3 stride-1 conv is exactly 'same': write the default.
        # (An average pool keeps explicit padding: it counts the padding in its divisor.)
        return ""
    top, bottom, left, right = step.padding
    if top == bottom and left == right:
        if top == left == 0:
            return "p=valid"
        return f"p={_pair((top, left))}"
    raise _asymmetric(program, step)


def _same(step: Step) -> tuple[int, int, int, int]:
    """The padding (or deconv crop) ``same`` would give ``step``'s input."""
    sides: list[int] = []
    for axis, size in enumerate((step.input.h, step.input.w)):
        kernel, stride, dilation = (step.kernel_hw[axis], step.stride_hw[axis],
                                    step.dilation_hw[axis])
        if step.kind == "deconv":
            _, before, after = deconv_out(size, kernel, stride, dilation, "same", axis)
        else:
            _, before, after = same_padding(size, kernel, stride, dilation)
        sides += [before, after]
    return sides[0], sides[1], sides[2], sides[3]


def _asymmetric(program: Program, step: Step) -> SpecError:
    top, bottom, left, right = step.padding
    return structure_error(program, step, f"padding top {top}, bottom {bottom}, left {left}, "
                                          f"right {right} is neither symmetric nor 'same'")
