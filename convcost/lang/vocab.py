"""The vocabulary: the op kinds a program step may have, the layer words and options that
write them, and turning written arguments into a LayerSpec. The one list of each."""

from __future__ import annotations

import re
from typing import NamedTuple

from convcost.errors import Source, Span, SpecError
from convcost.lang.ast import LayerSpec

#: Most layers one model may be written with or expand to; beyond this a model is refused
#: while it is built (parsed or resolved) rather than after building millions of objects.
MAX_LAYERS = 100_000
#: Largest size, count or factor written anywhere (channels, kernels, strides, repeats,
#: input sizes): larger values are typing errors or attacks, and refusing them keeps every
#: count exact and every table number finite.
MAX_SIZE = 2**31 - 1
#: Digits of the longest number worth converting (longer ones are refused unread: Python
#: refuses int() of more than 4,300 digits, and such numbers exceed MAX_SIZE anyway).
_MAX_DIGITS = len(str(MAX_SIZE))

#: Kinds that change nothing and allocate nothing (their output aliases their input; a
#: channel ``slice`` is a view, as ``torch.chunk`` gives).
ALIAS_KINDS = frozenset({"id", "dropout", "droppath", "slice"})
#: Element-wise activations: one op per element, no params (``prelu`` has C params).
ACTIVATION_KINDS = frozenset({"relu", "relu6", "sigmoid", "tanh", "gelu", "silu", "softmax",
                              "hardswish", "hardsigmoid", "leakyrelu", "elu", "mish", "prelu"})
#: Normalisations over more than one element: channel layernorm, groupnorm, instancenorm.
NORM_KINDS = frozenset({"ln", "gn", "instancenorm"})
#: Steps that combine several values: branch concatenation, residual add, gate multiply.
MERGE_KINDS = frozenset({"concat", "add", "mul"})
#: Every op kind a step may have (each has a cost handler and a NumPy kernel).
OP_KINDS = frozenset(
    {"conv", "deconv", "fc", "maxpool", "avgpool", "gap", "up", "bn", "scale", "shuffle"}
    | ALIAS_KINDS | ACTIVATION_KINDS | NORM_KINDS | MERGE_KINDS
)

#: Layers written as a bare word (some take an optional number), mapped to their kind.
SIMPLE_LAYERS: dict[str, str] = {
    "gap": "gap", "globalavgpool": "gap", "bn": "bn",
    "relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh", "gelu": "gelu",
    "silu": "silu", "swish": "silu", "softmax": "softmax", "dropout": "dropout", "id": "id",
    "hardswish": "hardswish", "hswish": "hardswish", "hardsigmoid": "hardsigmoid",
    "hsigmoid": "hardsigmoid", "leakyrelu": "leakyrelu", "elu": "elu", "mish": "mish",
    "prelu": "prelu", "ln": "ln", "layernorm": "ln", "gn": "gn", "groupnorm": "gn",
    "instancenorm": "instancenorm", "scale": "scale", "layerscale": "scale",
    "droppath": "droppath", "stochasticdepth": "droppath", "shuffle": "shuffle",
}
#: Kinds written with an optional number that does not change any count, as
#: (what it is, lowest value, whether the value must stay below 1, example).
RATE_KINDS: dict[str, tuple[str, float, bool, str]] = {
    "dropout": ("rate", 0.0, True, "dropout(0.5)"),
    "droppath": ("rate", 0.0, True, "droppath(0.1)"),
    "leakyrelu": ("negative slope", 0.0, False, "leakyrelu(0.01)"),
    "elu": ("alpha", 0.0, False, "elu(1.0)"),
}
#: Kinds whose bare number is a count, and what that count is.
COUNT_KINDS: dict[str, str] = {
    "conv": "the channel count", "deconv": "the channel count", "fc": "the channel count",
    "gn": "the group count", "shuffle": "the group count",
}
#: Block words written before '[': residual, gate and channel split.
BLOCK_WORDS = frozenset({"res", "gate", "split"})
#: Layers that take a channel count: fc and its alias.
FC_NAMES = frozenset({"fc", "linear"})
#: Names followed by a kernel size in the same word, e.g. ``maxpool3x3``.
_SIZED = re.compile(r"(maxpool|avgpool|deconv)(\d+)[x×](\d+)$")
_UP = re.compile(r"up(\d+)$")
_SIZED_NAMES = ("maxpool", "avgpool", "deconv")
_MISSIZED = r"([a-z_]+)(\d+[x×]\d+)$"  # error path only: compiled by re's cache when used

LAYER_HELP = ("a layer such as 3x3(64), 1x7(192), fc(1000), maxpool3x3(s=2), avgpool2x2, gap, "
              "deconv4x4(64, s=2), up2, bn, relu, [A | B], res[A], (A)*2 or $name")
KNOWN_WORDS = sorted({*SIMPLE_LAYERS, *FC_NAMES, "maxpool3x3", "avgpool2x2", "deconv3x3", "up2",
                      *BLOCK_WORDS})

_ALIASES: dict[str, str] = {
    "s": "stride", "stride": "stride", "p": "pad", "pad": "pad", "d": "dilation",
    "dilation": "dilation", "g": "groups", "groups": "groups", "bias": "bias",
}
_FLAGS: dict[str, str] = {"nobias": "bias", "dw": "dw", "ceil": "ceil", "affine": "affine",
                          "noaffine": "affine"}
_CONV_OPTIONS = frozenset({"stride", "pad", "dilation", "groups", "bias", "dw"})
ALLOWED_OPTIONS: dict[str, frozenset[str]] = {
    "conv": _CONV_OPTIONS,
    "deconv": _CONV_OPTIONS,
    "fc": frozenset({"bias"}),
    "maxpool": frozenset({"stride", "pad", "ceil"}),
    "avgpool": frozenset({"stride", "pad", "ceil"}),
    "ln": frozenset({"affine"}),
    "gn": frozenset({"affine"}),
    "instancenorm": frozenset({"affine"}),
    "shuffle": frozenset(),
}
_SPELLING: dict[str, str] = {
    "stride": "s=2 or s=2x1", "pad": "p=same, p=valid, p=1 or p=1x2",
    "dilation": "d=2 or d=2x1", "groups": "g=2", "bias": "bias=yes, bias=no or nobias",
    "dw": "dw", "ceil": "ceil", "affine": "affine or noaffine",
}
_TRUE = frozenset({"yes", "true"})
_FALSE = frozenset({"no", "false"})


class Arg(NamedTuple):
    """One written argument: ``value`` alone (``name`` None), a flag, or ``name=value``."""

    name: str | None
    value: str
    span: Span
    value_span: Span


def whole(text: str) -> int:
    """The whole number written as ``text`` (ASCII digits); ``MAX_SIZE + 1`` for any number
    too long to matter, so range checks refuse it without converting thousands of digits."""
    return int(text) if len(text) <= _MAX_DIGITS else MAX_SIZE + 1


def too_large(what: str) -> str:
    """The message for a number above :data:`MAX_SIZE` (never quoting it: it may be huge)."""
    return f"{what} is too large: at most {MAX_SIZE:,}"


def layer_word(word: str) -> tuple[str, tuple[int, int], int] | None:
    """``(kind, kernel_hw, factor)`` for a layer written as one word, or None if unknown."""
    lower = word.lower()
    if lower in SIMPLE_LAYERS:
        return SIMPLE_LAYERS[lower], (1, 1), 1
    if lower in FC_NAMES:
        return "fc", (1, 1), 1
    sized = _SIZED.match(lower)
    if sized:
        return sized.group(1), (whole(sized.group(2)), whole(sized.group(3))), 1
    up = _UP.match(lower)
    if up:
        return "up", (1, 1), whole(up.group(1))
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

        sized = re.match(_MISSIZED, lower)
        if sized:  # 'maxpol2x2': match the name, keep the size as written
            names = difflib.get_close_matches(sized.group(1), _SIZED_NAMES, n=1, cutoff=0.6)
            if names:
                return (f"unknown layer '{word}'; did you mean '{names[0]}{sized.group(2)}'?; "
                        f"expected {LAYER_HELP}")
        close = difflib.get_close_matches(lower, KNOWN_WORDS, n=1, cutoff=0.75)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        return f"unknown layer '{word}'{hint}; expected {LAYER_HELP}"
    return f"unknown layer '{word}'{hint}"


def _positive(source: Source, arg: Arg, what: str, minimum: int = 1) -> int:
    if not arg.value.isdigit():
        raise SpecError.at(source, arg.value_span,
                           f"{what} must be a whole number, not '{arg.value}'")
    number = whole(arg.value)
    if number > MAX_SIZE:
        raise SpecError.at(source, arg.value_span, too_large(what))
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
    numbers = [whole(part) for part in parts]
    if max(numbers) > MAX_SIZE:
        raise SpecError.at(source, arg.value_span, too_large(what))
    if min(numbers) < minimum:
        raise SpecError.at(source, arg.value_span,
                           f"{what} must be at least {minimum}, not '{arg.value}'")
    return (numbers[0], numbers[-1])


def build_layer(source: Source, kind: str, text: str, span: Span, kernel_hw: tuple[int, int],
                factor: int, args: list[Arg]) -> LayerSpec:
    """Check ``args`` against what ``kind`` accepts and build its :class:`LayerSpec`."""
    if kind in RATE_KINDS:
        return _rate_layer(source, kind, text, span, args)
    allowed = ALLOWED_OPTIONS.get(kind)
    if allowed is None:
        if args:
            raise SpecError.at(source, args[0].span,
                               f"'{text.split('(')[0]}' takes no arguments")
        return LayerSpec(kind=kind, text=text, span=span, kernel_hw=kernel_hw, factor=factor)

    count_name = COUNT_KINDS.get(kind)
    takes_channels = count_name is not None
    out_channels: int | None = None
    seen: dict[str, Arg] = {}
    values: dict[str, object] = {}
    for arg in args:
        if arg.name is None and arg.value.lower() not in _FLAGS and not arg.value[0].isalpha():
            if count_name is None:
                raise SpecError.at(source, arg.span,
                                   f"{kind} takes no channel count; its options are "
                                   f"{_option_list(allowed)}")
            if out_channels is not None:
                raise SpecError.at(source, arg.span,
                                   f"{count_name} is given twice; options are written "
                                   f"name=value, e.g. s=2")
            out_channels = _positive(source, arg, count_name)
            continue
        if arg.name is not None and arg.name.lower() in _FLAGS:
            raise SpecError.at(source, arg.span,
                               f"'{arg.name}' is a flag: write it alone, without '='")
        name = _FLAGS.get(arg.value.lower()) if arg.name is None else _ALIASES.get(arg.name.lower())
        if name is None or name not in allowed:
            written = arg.name if arg.name is not None else arg.value
            raise SpecError.at(source, arg.span,
                               f"unknown option '{written}' for {kind}"
                               f"{_option_hint(arg, allowed)}; "
                               f"expected {_option_list(allowed)}")
        if name in seen:
            raise SpecError.at(source, arg.span,
                               f"option '{name}' is given twice (an option and its alias count "
                               f"as the same option)")
        seen[name] = arg
        values[name] = _option_value(source, name, arg)

    if kind in ("gn", "shuffle"):
        if out_channels is None:
            raise SpecError.at(source, span, f"{kind} needs a group count, e.g. {kind}(2)")
        return LayerSpec(kind=kind, text=text, span=span, groups=out_channels,
                         affine=bool(values.get("affine", True)))
    if kind in NORM_KINDS:
        # PyTorch's defaults: LayerNorm is affine, InstanceNorm2d is not.
        return LayerSpec(kind=kind, text=text, span=span,
                         affine=bool(values.get("affine", kind != "instancenorm")))
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


#: Options as other tools spell them, to the short alias convcost uses (did-you-mean hints).
_OPTION_SYNONYMS: dict[str, str] = {
    "padding": "p", "strides": "s", "dilations": "d", "group": "g", "depthwise": "dw",
    "ceil_mode": "ceil", "use_bias": "bias",
}


def _option_hint(arg: Arg, allowed: frozenset[str]) -> str:
    """" (did you mean 's=2'?)" for a misspelt option or flag, or '' when nothing close fits."""
    written = (arg.name if arg.name is not None else arg.value).lower()
    close = _OPTION_SYNONYMS.get(written)
    if close is None:
        import difflib  # only on this error path: it costs start-up time

        matches = difflib.get_close_matches(written, [*_ALIASES, *_FLAGS], n=1, cutoff=0.6)
        close = matches[0] if matches else None
    if close is None or (_ALIASES.get(close) or _FLAGS.get(close)) not in allowed:
        return ""
    if close in _FLAGS:
        return f" (did you mean '{close}'?)"
    return f" (did you mean '{close}={arg.value if arg.name is not None else '...'}'?)"


def _option_list(allowed: frozenset[str]) -> str:
    return ", ".join(_SPELLING[name] for name in sorted(allowed))


def _option_value(source: Source, name: str, arg: Arg) -> object:
    """The checked value of option ``name`` (flags carry their implied value)."""
    if arg.name is None:  # a flag
        # 'nobias' means bias=no and 'noaffine' affine=no; 'dw', 'ceil' and 'affine' mean on
        return not arg.value.lower().startswith("no")
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


def _rate_layer(source: Source, kind: str, text: str, span: Span, args: list[Arg]) -> LayerSpec:
    """``dropout``, ``droppath``, ``leakyrelu`` or ``elu``, with an optional number (a rate,
    slope or alpha) that is checked and then ignored: it changes no count."""
    what, lowest, below_one, example = RATE_KINDS[kind]
    if len(args) > 1 or (args and args[0].name is not None):
        raise SpecError.at(source, args[-1].span,
                           f"{kind} takes at most one argument, its {what}, e.g. {example}")
    if args:
        try:
            value = float(args[0].value)
        except ValueError:
            value = -1.0
        if not (lowest <= value < (1.0 if below_one else float("inf"))):
            bound = "from 0 up to 1" if below_one else "of at least 0"
            raise SpecError.at(source, args[0].value_span,
                               f"bad {kind} {what} '{args[0].value}'; expected a number "
                               f"{bound}, e.g. {example}")
    return LayerSpec(kind=kind, text=text, span=span)
