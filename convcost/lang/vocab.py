"""The vocabulary: the op kinds a program step may have, the layer words and options that
write them, and turning written arguments into a LayerSpec. The one list of each."""

from __future__ import annotations

import re
from typing import NamedTuple

from convcost.errors import SpecError, Source, Span
from convcost.lang.ast import LayerSpec

#: Kinds that change nothing and allocate nothing (their output aliases their input).
ALIAS_KINDS = frozenset({"id", "dropout"})
#: Element-wise activations: one op per element, no params.
ACTIVATION_KINDS = frozenset({"relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "softmax"})
#: Every op kind a step may have (each has a cost handler and a NumPy kernel).
OP_KINDS = frozenset(
    {"conv", "deconv", "fc", "maxpool", "avgpool", "gap", "up", "bn", "concat", "add"}
    | ALIAS_KINDS
    | ACTIVATION_KINDS
)

#: Parameter-free layers written as a bare word, mapped to their kind.
SIMPLE_LAYERS: dict[str, str] = {
    "gap": "gap", "globalavgpool": "gap", "bn": "bn",
    "relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh", "gelu": "gelu",
    "silu": "silu", "softmax": "softmax", "dropout": "dropout", "id": "id",
}
#: Layers that take a channel count: fc and its alias.
FC_NAMES = frozenset({"fc", "linear"})
#: Names followed by a kernel size in the same word, e.g. ``maxpool3x3``.
_SIZED = re.compile(r"(maxpool|avgpool|deconv)(\d+)[x×](\d+)$")
_UP = re.compile(r"up(\d+)$")

LAYER_HELP = ("a layer such as 3x3(64), 1x7(192), fc(1000), maxpool3x3(s=2), avgpool2x2, gap, "
              "deconv4x4(64, s=2), up2, bn, relu, [A | B], res[A], (A)*2 or $name")
KNOWN_WORDS = sorted({*SIMPLE_LAYERS, *FC_NAMES, "maxpool3x3", "avgpool2x2", "deconv3x3", "up2",
                      "res"})

_ALIASES: dict[str, str] = {
    "s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "d": "dilation",
    "dilation": "dilation", "g": "groups", "groups": "groups", "bias": "bias",
}
_FLAGS: dict[str, str] = {"nobias": "bias", "dw": "dw", "ceil": "ceil"}
_CONV_OPTIONS = frozenset({"stride", "pad", "dilation", "groups", "bias", "dw"})
ALLOWED_OPTIONS: dict[str, frozenset[str]] = {
    "conv": _CONV_OPTIONS,
    "deconv": _CONV_OPTIONS,
    "fc": frozenset({"bias"}),
    "maxpool": frozenset({"stride", "pad", "ceil"}),
    "avgpool": frozenset({"stride", "pad", "ceil"}),
}
_SPELLING: dict[str, str] = {
    "stride": "s=2 or s=2x1", "pad": "p=same, p=valid, p=1 or p=1x2",
    "dilation": "d=2 or d=2x1", "groups": "g=2", "bias": "bias=yes, bias=no or nobias",
    "dw": "dw", "ceil": "ceil",
}
_TRUE = frozenset({"yes", "true"})
_FALSE = frozenset({"no", "false"})


class Arg(NamedTuple):
    """One written argument: ``value`` alone (``name`` None), a flag, or ``name=value``."""

    name: str | None
    value: str
    span: Span
    value_span: Span


def layer_word(word: str) -> tuple[str, tuple[int, int], int] | None:
    """``(kind, kernel_hw, factor)`` for a layer written as one word, or None if unknown."""
    lower = word.lower()
    if lower in SIMPLE_LAYERS:
        return SIMPLE_LAYERS[lower], (1, 1), 1
    if lower in FC_NAMES:
        return "fc", (1, 1), 1
    sized = _SIZED.match(lower)
    if sized:
        return sized.group(1), (int(sized.group(2)), int(sized.group(3))), 1
    up = _UP.match(lower)
    if up:
        return "up", (1, 1), int(up.group(1))
    return None


def unknown_layer_message(word: str) -> str:
    """Why ``word`` is not a layer, with a suggestion when one is close."""
    lower = word.lower()
    if lower in ("maxpool", "avgpool", "deconv"):
        hint = f"; {lower} needs a kernel size, e.g. {lower}3x3"
    elif lower.startswith(("maxpool", "avgpool", "deconv")):
        hint = f"; write the kernel size as KxK, e.g. {lower[:7].rstrip('0123456789')}3x3"
    elif lower.startswith("conv"):
        hint = "; a convolution is written KxK(C), e.g. 3x3(64)"
    elif lower == "up":
        hint = "; write the upsampling factor in the name, e.g. up2"
    else:
        import difflib  # only on this error path: it costs start-up time

        close = difflib.get_close_matches(lower, KNOWN_WORDS, n=1, cutoff=0.75)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown layer '{word}'{hint}; expected {LAYER_HELP}"
    return f"unknown layer '{word}'{hint}"


def _positive(source: Source, arg: Arg, what: str, minimum: int = 1) -> int:
    if not arg.value.isdigit():
        raise SpecError.at(source, arg.value_span,
                           f"{what} must be a whole number, not '{arg.value}'")
    number = int(arg.value)
    if number < minimum:
        raise SpecError.at(source, arg.value_span, f"{what} must be at least {minimum}, not {number}")
    return number


def _pair(source: Source, arg: Arg, what: str, minimum: int) -> tuple[int, int]:
    """``2`` or ``2x1`` (vertical first) as a pair of whole numbers >= ``minimum``."""
    parts = re.split(r"[xX×]", arg.value)
    example = _SPELLING[what]
    if len(parts) > 2 or not all(part.isdigit() for part in parts):
        raise SpecError.at(source, arg.value_span,
                           f"bad {what} '{arg.value}'; expected {example}")
    numbers = [int(part) for part in parts]
    if min(numbers) < minimum:
        raise SpecError.at(source, arg.value_span,
                           f"{what} must be at least {minimum}, not '{arg.value}'")
    return (numbers[0], numbers[-1])


def build_layer(source: Source, kind: str, text: str, span: Span, kernel_hw: tuple[int, int],
                factor: int, args: list[Arg]) -> LayerSpec:
    """Check ``args`` against what ``kind`` accepts and build its :class:`LayerSpec`."""
    if kind == "dropout":
        return _dropout(source, text, span, args)
    allowed = ALLOWED_OPTIONS.get(kind)
    if allowed is None:
        if args:
            raise SpecError.at(source, args[0].span,
                               f"'{text.split('(')[0]}' takes no arguments")
        return LayerSpec(kind=kind, text=text, span=span, kernel_hw=kernel_hw, factor=factor)

    takes_channels = kind in ("conv", "deconv", "fc")
    out_channels: int | None = None
    seen: dict[str, Arg] = {}
    values: dict[str, object] = {}
    for arg in args:
        if arg.name is None and arg.value.lower() not in _FLAGS:
            if not takes_channels:
                raise SpecError.at(source, arg.span,
                                   f"{kind} takes no channel count; its options are "
                                   f"{_option_list(allowed)}")
            if out_channels is not None:
                raise SpecError.at(source, arg.span,
                                   "the channel count is given twice; options are written "
                                   "name=value, e.g. s=2")
            out_channels = _positive(source, arg, "the channel count")
            continue
        if arg.name is not None and arg.name.lower() in _FLAGS:
            raise SpecError.at(source, arg.span,
                               f"'{arg.name}' is a flag: write it alone, without '='")
        name = _FLAGS[arg.value.lower()] if arg.name is None else _ALIASES.get(arg.name.lower())
        if name is None or name not in allowed:
            written = arg.name if arg.name is not None else arg.value
            raise SpecError.at(source, arg.span,
                               f"unknown option '{written}' for {kind}; expected "
                               f"{_option_list(allowed)}")
        if name in seen:
            raise SpecError.at(source, arg.span,
                               f"option '{name}' is given twice (an option and its alias count "
                               f"as the same option)")
        seen[name] = arg
        values[name] = _option_value(source, name, arg)

    if takes_channels and out_channels is None and not values.get("dw"):
        raise SpecError.at(source, span,
                           f"{kind} needs an output channel count, e.g. "
                           f"{'fc(1000)' if kind == 'fc' else text.split('(')[0] + '(64)'}")
    if values.get("dw") and "groups" in values:
        raise SpecError.at(source, seen["groups"].span,
                           "'dw' already sets groups to the input channels; drop 'g='")
    if values.get("ceil") and values.get("pad", "same") == "same":
        raise SpecError.at(source, seen["ceil"].span,
                           "'ceil' needs explicit or valid padding (p=valid or p=1); with "
                           "'same' padding the output size is already rounded up")
    return LayerSpec(
        kind=kind, text=text, span=span, kernel_hw=kernel_hw, out_channels=out_channels,
        stride_hw=values.get("stride"),  # type: ignore[arg-type]
        padding=values.get("pad", "same"),  # type: ignore[arg-type]
        dilation_hw=values.get("dilation", (1, 1)),  # type: ignore[arg-type]
        groups=values.get("groups", 1),  # type: ignore[arg-type]
        depthwise=bool(values.get("dw", False)),
        bias=bool(values.get("bias", True)),
        ceil=bool(values.get("ceil", False)),
        factor=factor,
    )


def _option_list(allowed: frozenset[str]) -> str:
    return ", ".join(_SPELLING[name] for name in sorted(allowed))


def _option_value(source: Source, name: str, arg: Arg) -> object:
    """The checked value of option ``name`` (flags carry their implied value)."""
    if arg.name is None:  # a flag
        return name != "bias"  # 'nobias' means bias=no; 'dw' and 'ceil' mean on
    value = arg.value.lower()
    if name == "stride":
        return _pair(source, arg, "stride", 1)
    if name == "dilation":
        return _pair(source, arg, "dilation", 1)
    if name == "groups":
        return _positive(source, arg, "groups")
    if name == "bias":
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise SpecError.at(source, arg.value_span,
                           f"bad bias '{arg.value}'; expected yes, no, true or false")
    # padding
    if value in ("same", "valid"):
        return value
    if not re.fullmatch(r"\d+(?:[x×]\d+)?", value):
        raise SpecError.at(source, arg.value_span,
                           f"bad padding '{arg.value}'; expected {_SPELLING['pad']}")
    return _pair(source, arg, "pad", 0)


def _dropout(source: Source, text: str, span: Span, args: list[Arg]) -> LayerSpec:
    """``dropout`` or ``dropout(rate)``: the rate is checked and then ignored (inference)."""
    if len(args) > 1 or (args and args[0].name is not None):
        raise SpecError.at(source, args[-1].span,
                           "dropout takes at most one argument, its rate, e.g. dropout(0.5)")
    if args:
        try:
            rate = float(args[0].value)
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate < 1.0:
            raise SpecError.at(source, args[0].value_span,
                               f"bad dropout rate '{args[0].value}'; expected a number from 0 "
                               f"up to 1, e.g. dropout(0.5)")
    return LayerSpec(kind="dropout", text=text, span=span)
