"""The tokenizer and parser: structure, names, continuation lines, and full error texts."""

from __future__ import annotations

import pytest

from convcost.errors import Source, SpecError
from convcost.lang import parse_chain, parse_source
from convcost.lang.ast import (
    BranchesSpec,
    FragmentSpec,
    LayerSpec,
    RepeatSpec,
    ResidualSpec,
    Sequence,
)
from convcost.lang.tokenizer import tokenize_line


def _error(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        parse_chain(text)
    return str(caught.value)


def _layers(text: str) -> tuple[object, ...]:
    return parse_chain(text).chain.body.items


# -- tokens -----------------------------------------------------------------------------------


def test_tokens_keep_dimensions_and_sized_names_whole() -> None:
    tokens = tokenize_line(Source("<arg>", ""), "56x56x256 -> maxpool3x3(s=2) # note", 1)
    assert [(token.kind, token.text) for token in tokens] == [
        ("DIMS", "56x56x256"), ("ARROW", "->"), ("WORD", "maxpool3x3"), ("LPAREN", "("),
        ("WORD", "s"), ("EQUALS", "="), ("DIMS", "2"), ("RPAREN", ")"),
    ]
    assert [token.column for token in tokens[:3]] == [1, 11, 14]


def test_times_sign_and_capital_x_separate_numbers() -> None:
    assert [t.text for t in tokenize_line(Source("a", ""), "56×56X3", 1)] == ["56×56X3"]
    spec = parse_chain("56×56X3 -> 3X3(8)").chain
    assert (spec.input.h, spec.input.w, spec.input.c) == (56, 56, 3)
    assert _layers("8 -> 3×1(8)")[0].kernel_hw == (3, 1)  # type: ignore[attr-defined]


# -- structure --------------------------------------------------------------------------------


def test_inputs_per_position_and_maps() -> None:
    assert parse_chain("256 -> relu").chain.input.h is None
    spec = parse_chain("100x80x512 -> relu").chain.input
    assert (spec.h, spec.w, spec.c) == (100, 80, 512)


def test_conv_options_and_aliases() -> None:
    layer = _layers("8 -> 3x3(64, stride=2x1, pad=1x2, dilation=2, groups=2, bias=no)")[0]
    assert isinstance(layer, LayerSpec)
    assert layer.kind == "conv" and layer.out_channels == 64
    assert layer.stride_hw == (2, 1) and layer.padding == (1, 2)
    assert layer.dilation_hw == (2, 2) and layer.groups == 2 and layer.bias is False
    short = _layers("8 -> 3x3(64, s=2x1, p=1x2, d=2, g=2, nobias)")[0]
    assert isinstance(short, LayerSpec)
    assert (short.stride_hw, short.padding, short.dilation_hw, short.groups, short.bias) == \
        ((2, 1), (1, 2), (2, 2), 2, False)


def test_names_and_options_are_case_insensitive() -> None:
    layer = _layers("8 -> 3x3(16, S=2, P=SAME, NoBias)")[0]
    assert isinstance(layer, LayerSpec)
    assert (layer.stride_hw, layer.padding, layer.bias) == ((2, 2), "same", False)
    kinds = [item.kind for item in _layers("8 -> ReLU -> BN -> MaxPool2x2 -> GAP -> FC(3)")]  # type: ignore[attr-defined]
    assert kinds == ["relu", "bn", "maxpool", "gap", "fc"]


def test_every_word_layer_and_alias() -> None:
    text = ("8x8x4 -> linear(4) -> fc(4) -> globalavgpool -> gap -> up2 -> deconv2x2(4, s=2) "
            "-> avgpool2x2 -> maxpool1x2(s=1, p=valid, ceil) -> relu6 -> sigmoid -> tanh -> gelu "
            "-> silu -> softmax -> dropout(0.5) -> dropout -> id -> 3x3(dw) -> 1x1(8, dw)")
    kinds = [item.kind for item in _layers(text)]  # type: ignore[attr-defined]
    assert kinds == ["fc", "fc", "gap", "gap", "up", "deconv", "avgpool", "maxpool", "relu6",
                     "sigmoid", "tanh", "gelu", "silu", "softmax", "dropout", "dropout", "id",
                     "conv", "conv"]


def test_repeat_binds_tighter_than_arrow() -> None:
    items = _layers("8 -> 1x1(8) -> relu*3")
    assert isinstance(items[0], LayerSpec)
    assert isinstance(items[1], RepeatSpec) and items[1].count == 3
    assert isinstance(items[1].item, LayerSpec) and items[1].item.kind == "relu"


def test_groups_branches_residuals_nest() -> None:
    items = _layers("8 -> (3x3(8) -> bn)*2 -> [1x1(4) | id | res[relu | 1x1(8)]] -> res[relu]")
    group, branches, residual = items
    assert isinstance(group, RepeatSpec) and isinstance(group.item, Sequence)
    assert isinstance(branches, BranchesSpec) and len(branches.branches) == 3
    inner = branches.branches[2].items[0]
    assert isinstance(inner, ResidualSpec) and inner.shortcut is not None
    assert isinstance(residual, ResidualSpec) and residual.shortcut is None


def test_layer_text_is_kept_as_written() -> None:
    assert [item.text for item in _layers("8 -> 3x3( 64 ,s=2 ) -> relu")] == \
        ["3x3( 64 ,s=2 )", "relu"]  # type: ignore[attr-defined]


# -- files ------------------------------------------------------------------------------------


FILE = """\
# comments start with '#'
let bottleneck = 1x1(64) -> 3x3(64) -> 1x1(256)

direct:      256 -> 4x4(256)   # trailing comment
bottleneck:  256 -> 1x1(64) -> 4x4(256)
stage:       56x56x256 -> res[$bottleneck]*3
56x56x3 -> relu
"""


def test_file_models_fragments_and_bare_chains() -> None:
    parsed = parse_source(Source("nets.convcost", FILE))
    assert parsed.errors == []
    assert [model.name for model in parsed.models] == \
        ["direct", "bottleneck", "stage", "nets.convcost:7"]
    stage = parsed.models[2].chain.body.items[0]
    assert isinstance(stage, RepeatSpec) and isinstance(stage.item, ResidualSpec)
    fragment = stage.item.body.items[0]
    assert isinstance(fragment, FragmentSpec) and fragment.name == "bottleneck"
    assert parsed.models[1].text == "256 -> 1x1(64) -> 4x4(256)"


def test_command_line_chains_are_named_by_their_text() -> None:
    assert parse_chain("256 -> 1x1(64)").name == "256 -> 1x1(64)"


@pytest.mark.parametrize("text", [
    "net: 8 -> 1x1(8) ->\n    relu",                 # line ends in '->'
    "net: 8 -> 1x1(8)\n    -> relu",                 # next line starts with '->'
    "net: 8 -> [1x1(8)\n  | relu]",                  # bracket open, next starts with '|'
    "net: 8 -> [1x1(8) |\n\n  # a comment\n  relu]",  # ends in '|', blank+comment skipped
    "net:\n  8 -> relu",                             # ends in ':'
    "net: 8 -> (1x1(8)\n -> relu)",                  # parenthesis open
])
def test_continuation_lines(text: str) -> None:
    parsed = parse_source(Source("f", text))
    assert parsed.errors == []
    assert [model.name for model in parsed.models] == ["net"]


def test_unclosed_bracket_does_not_swallow_the_next_model() -> None:
    parsed = parse_source(Source("f", "a: 8 -> [relu | id\nb: 8 -> relu\nlet x = relu\nc: 8 -> $x"))
    assert [model.name for model in parsed.models] == ["b", "c"]
    assert [(error.line, error.column) for error in parsed.errors] == [(1, 19)]


def test_model_names_may_hold_dots_and_dashes() -> None:
    parsed = parse_source(Source("f", "resnet-50.v1_5: 8 -> relu"))
    assert [model.name for model in parsed.models] == ["resnet-50.v1_5"]


# -- errors: full text, caret included ---------------------------------------------------------


def test_error_unknown_layer_suggests_a_close_name() -> None:
    assert _error("64 -> rellu") == (
        "<arg>:1:7: error: unknown layer 'rellu'; did you mean 'relu'?; expected a layer such "
        "as 3x3(64), 1x7(192), fc(1000), maxpool3x3(s=2), avgpool2x2, gap, deconv4x4(64, s=2), "
        "up2, bn, relu, [A | B], res[A], (A)*2 or $name\n"
        "  64 -> rellu\n"
        "        ^^^^^")


def test_error_missing_close_paren() -> None:
    assert _error("64 -> 3x3(64, s=2 -> relu") == (
        "<arg>:1:19: error: expected ')' to close the '(' at line 1, column 10, found '->'\n"
        "  64 -> 3x3(64, s=2 -> relu\n"
        "                    ^^")


def test_error_missing_close_bracket_at_end() -> None:
    assert _error("64 -> [relu | id") == (
        "<arg>:1:17: error: expected ']' to close the '[' at line 1, column 7, found the end "
        "of the statement\n"
        "  64 -> [relu | id\n"
        "                  ^")


def test_error_missing_input() -> None:
    assert _error("3x3(64) -> relu") == (
        "<arg>:1:1: error: missing input: a chain starts with a channel count like 256 or a map "
        "like 56x56x256, before its first layer\n"
        "  3x3(64) -> relu\n"
        "  ^^^")


def test_error_bad_option_value() -> None:
    assert _error("64 -> 3x3(64, s=2x2x2)") == (
        "<arg>:1:17: error: bad stride '2x2x2'; expected s=2 or s=2x1\n"
        "  64 -> 3x3(64, s=2x2x2)\n"
        "                  ^^^^^")


def test_error_flag_with_value() -> None:
    assert _error("8x8x8 -> 3x3(8, dw=yes)") == (
        "<arg>:1:17: error: 'dw' is a flag: write it alone, without '='\n"
        "  8x8x8 -> 3x3(8, dw=yes)\n"
        "                  ^^^^^^")


def test_error_channel_count_twice() -> None:
    assert _error("8 -> 3x3(8, 16)") == (
        "<arg>:1:13: error: the channel count is given twice; options are written name=value, "
        "e.g. s=2\n"
        "  8 -> 3x3(8, 16)\n"
        "              ^^")


def test_error_pool_takes_no_channels() -> None:
    assert _error("8x8x8 -> maxpool2x2(8)") == (
        "<arg>:1:21: error: maxpool takes no channel count; its options are ceil, p=same, "
        "p=valid, p=1 or p=1x2, s=2 or s=2x1\n"
        "  8x8x8 -> maxpool2x2(8)\n"
        "                      ^")


def test_error_fc_needs_channels() -> None:
    assert _error("8 -> fc") == (
        "<arg>:1:6: error: fc needs an output channel count, e.g. fc(1000)\n"
        "  8 -> fc\n"
        "       ^^")


def test_error_dangling_arrow() -> None:
    assert _error("8 -> relu ->") == (
        "<arg>:1:13: error: expected a layer after '->', found the end of the statement\n"
        "  8 -> relu ->\n"
        "              ^")


def test_error_bad_repeat() -> None:
    assert _error("8 -> relu*x") == (
        "<arg>:1:11: error: expected a repeat count after '*', e.g. *3, found 'x'\n"
        "  8 -> relu*x\n"
        "            ^")


def test_error_bare_number_as_layer() -> None:
    assert _error("8 -> 16") == (
        "<arg>:1:6: error: expected a layer, found '16' (a kernel is written KxK, e.g. 3x3(64); "
        "an input only starts a chain)\n"
        "  8 -> 16\n"
        "       ^^")


def test_tabs_keep_the_caret_aligned() -> None:
    assert _error("8 ->\tbogus").splitlines()[1:] == ["  8 ->\tbogus", "      \t^^^^^"]


def test_deep_nesting_is_a_clear_error_not_a_recursion_error() -> None:
    message = _error("8 -> " + "[" * 5000 + "relu" + "]" * 5000)
    assert "brackets nest deeper than 64 levels" in message


def test_one_bad_statement_keeps_the_others() -> None:
    parsed = parse_source(Source("f", "a: 8 -> bogus\nb: 8 -> relu\nc: 8 -> 3x3(8, s=0)"))
    assert [model.name for model in parsed.models] == ["b"]
    assert [(error.line, error.column) for error in parsed.errors] == [(1, 9), (3, 18)]


def test_statements_over_several_lines_keep_readable_names_and_texts() -> None:
    text = "net:\n  56x56x64\n  -> 3x3(64,\n        s=2)   # strided\n  -> [1x1(8)\n     | id]\n"
    parsed = parse_source(Source("f", text))
    model = parsed.models[0]
    assert (model.name, model.span.line) == ("net", 1)
    assert model.text == "56x56x64 -> 3x3(64, s=2) -> [1x1(8) | id]"
    layer = model.chain.body.items[0]
    assert isinstance(layer, LayerSpec) and layer.text == "3x3(64, s=2)"
    assert (layer.span.line, layer.span.column) == (3, 6)


# -- hostile input: bounded work and messages (issue 11) --------------------------------------

HUGE = "9" * 5000  # beyond Python's 4,300-digit int() limit


@pytest.mark.parametrize("chain", [
    f"256 -> 3x3({HUGE})", f"256 -> 3x3(64, s={HUGE})", f"256 -> relu*{HUGE}",
    f"8x8x{HUGE} -> relu", f"256 -> {HUGE}x3(64)", f"256 -> up{HUGE}",
    f"256 -> maxpool{HUGE}x2", "256 -> 3x3(2147483648)", "256 -> gn(99999999999)",
    f"256 -> 3x3(64, p={HUGE})", f"256 -> 3x3(64, d=1x{HUGE})",
])
def test_huge_numbers_are_located_errors_with_bounded_messages(chain: str) -> None:
    message = _error(chain)
    assert "too large: at most 2,147,483,647" in message.splitlines()[0]
    assert len(message.splitlines()[0]) < 200


def test_largest_size_is_accepted() -> None:
    assert _layers("1 -> 1x1(2147483647)")[0].out_channels == 2**31 - 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("digit", ["٣", "²", "３"])
def test_non_ascii_digits_are_refused_everywhere_in_specs(digit: str) -> None:
    assert "unexpected character" in _error(f"{digit} -> relu")
    assert "unexpected character" in _error(f"256 -> 3x3({digit})")


def test_lone_carriage_returns_end_lines() -> None:
    parsed = parse_source(Source("f", "a: 8 -> relu\rb: 8 -> bogus\rc: 8 -> id\r"))
    assert [m.name for m in parsed.models] == ["a", "c"]
    assert (parsed.errors[0].line, parsed.errors[0].column) == (2, 9)
    assert parsed.errors[0].line_text == "b: 8 -> bogus"


def test_undefined_fragment_names_only_the_nearest_few() -> None:
    lets = "".join(f"let frag{i} = relu\n" for i in range(1000))
    parsed = parse_source(Source("f", lets + "m: 8 -> $frag12x\n"))
    message = parsed.errors[0].message
    assert len(message) < 200 and "did you mean $frag12" in message
    far = parse_source(Source("f", lets + "m: 8 -> $zzz\n")).errors[0].message
    assert "1,000 fragments are defined" in far and len(far) < 200


def test_undefined_fragment_compares_only_the_latest_fragments() -> None:
    # 800,000 fragments and 100 undefined uses took 253 s in difflib: the search is bounded.
    from convcost.lang.grammar import _CANDIDATES

    lets = "let early = relu\n" + "".join(f"let f{i} = relu\n" for i in range(_CANDIDATES))
    message = parse_source(Source("f", lets + "m: 8 -> $earl\n")).errors[0].message
    assert "none of the last 1,000 is close" in message and "$early" not in message
    recent = parse_source(Source("f", lets + "m: 8 -> $f999x\n")).errors[0].message
    assert "did you mean $f999" in recent


def test_a_file_full_of_errors_stops_after_the_limit() -> None:
    from convcost.lang.parser import MAX_ERRORS

    parsed = parse_source(Source("f", "m: 8 -> bogus\n" * 5000))
    assert len(parsed.errors) == MAX_ERRORS + 1
    assert parsed.errors[-1].message.startswith(f"too many errors: stopped after {MAX_ERRORS}")


def test_layer_limit_is_enforced_while_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    import convcost.lang.parser as parser

    monkeypatch.setattr(parser, "MAX_LAYERS", 10)
    assert "more than 10 layers in one statement" in _error("8" + " -> relu" * 11)
    parse_chain("8" + " -> relu" * 10)


def test_layers_across_lines_keep_their_text() -> None:
    # text_between finds tokens by index: multi-line layers parse in linear time
    # (benchmarks/hostile_parse.py measures the ratio against the same layers on one line).
    text = "m: 8 -> " + " -> ".join("3x3(8,\n s=1)" for _ in range(1000)) + "\n"
    parsed = parse_source(Source("f", text))
    assert parsed.errors == []
    items = parsed.models[0].chain.body.items
    assert len(items) == 1000 and items[-1].text == "3x3(8, s=1)"  # type: ignore[union-attr]


def test_stored_errors_keep_no_frames() -> None:
    from convcost.analysis import analyze_text

    parsed = parse_source(Source("f", "let a = bogus\nm: 8 -> $a\nn: 8 -> relu*3x\n"))
    analysis = analyze_text("8 -> (relu)*100001")  # over the layer limit while resolving
    for error in [*parsed.errors, *analysis.errors]:
        assert error.__traceback__ is None and error.__context__ is None


@pytest.mark.parametrize(("chain", "suggestion"), [
    ("256 -> maxpol2x2", "did you mean 'maxpool2x2'?"),
    ("256 -> 3x3(64, strid=2)", "did you mean 'stride=2'?"),
    ("256 -> 3x3(64, padding=1)", "did you mean 'p=1'?"),
    ("256 -> 3x3(64, nobais)", "did you mean 'nobias'?"),
    ("256 -> swich", "did you mean 'swish'?"),
])
def test_did_you_mean_for_layers_and_options(chain: str, suggestion: str) -> None:
    assert suggestion in _error(chain)


def test_channels_first_input_warns() -> None:
    parsed = parse_source(Source("<arg>", "3x224x224 -> 3x3(64)"), bare_names="text")
    assert len(parsed.models) == 1
    assert str(parsed.warnings[0]).startswith("<arg>:1:1: warning: input 3x224x224 reads as "
                                              "H=3, W=224, C=224")
    assert "write 224x224x3" in parsed.warnings[0].message
    for fine in ("224x224x3 -> relu", "1x1x2048 -> fc(10)", "7x7x512 -> relu", "256 -> relu"):
        assert parse_source(Source("<arg>", fine), bare_names="text").warnings == []


def test_errors_on_huge_lines_and_words_stay_short() -> None:
    long_line = "m: 8" + " -> relu" * 5_000 + " -> bogus -> relu\n"
    error = parse_source(Source("f", long_line)).errors[0]
    quoted, caret = error.caret_lines()
    assert len(quoted) < 180 and "bogus" in quoted
    assert quoted.index("bogus") == caret.index("^") and caret.endswith("^^^^^")
    word = parse_source(Source("f", "m: 8 -> " + "x" * 100_000 + "\n")).errors[0]
    assert len(str(word)) < 1200
