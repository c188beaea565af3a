"""Property-based hardening: random and mutated specs only ever produce convcost's own errors.

``analyze_source`` turns every :class:`SpecError` into an entry of ``errors``; any other
exception escaping it (IndexError, RecursionError, ZeroDivisionError, ...) fails these tests.
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from convcost.analysis import Options, analyze_source
from convcost.errors import Source

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [path.read_text(encoding="utf-8") for path in sorted((ROOT / "examples").glob("*.convcost"))]
SEEDS += [path.read_text(encoding="utf-8")
          for path in sorted((ROOT / "tests" / "data" / "valid").glob("*.convcost"))]

PIECES = ["->", "(", ")", "[", "]", "|", "*", ",", "=", ":", "$", "#", "\n", " ", "x", "×",
          "0", "1", "2", "3", "7", "64", "256", "1000000", "3x3", "1x1", "2x1", "56x56x64",
          "res", "let", "fc", "bn", "relu", "gap", "up2", "maxpool3x3", "avgpool2x2",
          "deconv3x3", "dw", "s=", "p=", "d=", "g=", "same", "valid", "ceil", "nobias",
          "bias=", "dropout", "id", "softmax", "$a", "a", "net:", "let a =", "0.5"]
# CONVCOST_FUZZ_EXAMPLES=5000 python -m pytest tests/test_fuzz.py fuzzes harder on demand.
SETTINGS = settings(max_examples=int(os.environ.get("CONVCOST_FUZZ_EXAMPLES", "300")),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _analyze(text: str, size: tuple[int, int] | None = None) -> None:
    result = analyze_source(Source("fuzz.convcost", text), Options(size=size))
    for error in result.errors:
        assert error.message
        assert str(error).startswith("fuzz.convcost")
    for model in result.reports:
        assert model.totals.macs >= 0 and model.totals.peak_activation_bytes > 0


@SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_token_soup_never_escapes(text: str) -> None:
    _analyze(text)
    _analyze("net: 56x56x64 -> " + text)


@SETTINGS
@given(st.text(max_size=200))
def test_arbitrary_text_never_escapes(text: str) -> None:
    _analyze(text)


@st.composite
def _mutated(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["delete", "insert", "replace"]))
        piece = draw(st.sampled_from(PIECES))
        if action == "delete":
            text = text[:position] + text[position + draw(st.integers(1, 8)):]
        elif action == "insert":
            text = text[:position] + piece + text[position:]
        else:
            text = text[:position] + piece + text[position + len(piece):]
    return text


@SETTINGS
@given(_mutated(), st.sampled_from([None, (1, 1), (7, 5), (224, 224)]))
def test_mutated_examples_never_escape(text: str, size: tuple[int, int] | None) -> None:
    _analyze(text, size)


def test_huge_numbers_stay_exact() -> None:
    text = "net: 100000x100000x100000 -> 3x3(1000000000, s=1) -> fc(123456789)"
    result = analyze_source(Source("big", text))
    assert result.errors == []
    totals = result.reports[0].totals
    conv = 9 * 100000 * 1000000000 * 100000 * 100000
    fc = 100000 * 100000 * 1000000000 * 123456789
    assert totals.macs == conv + fc


def test_fragment_chains_and_doubling_are_refused_cleanly() -> None:
    deep = "\n".join(["let a0 = relu", *(f"let a{i} = $a{i - 1}" for i in range(1, 400)),
                      "net: 8 -> $a399"])
    errors = analyze_source(Source("deep", deep)).errors
    assert len(errors) == 1 and "more than 200 levels deep" in errors[0].message
    doubling = "\n".join(["let a0 = relu", *(f"let a{i} = $a{i - 1} -> $a{i - 1}"
                                              for i in range(1, 40)), "net: 8 -> $a39"])
    errors = analyze_source(Source("double", doubling)).errors
    assert len(errors) == 1 and "more than 100,000 layers" in errors[0].message


def test_long_chain_is_linear_and_fine() -> None:
    text = "net: 8 -> " + " -> ".join(["relu"] * 20000)
    result = analyze_source(Source("long", text))
    assert result.errors == [] and len(result.reports[0].layers) == 20000


@st.composite
def _modern_chain(draw: st.DrawFn) -> tuple[str, tuple[int, int, int], int, int]:
    """A random chain of the newer forms with its shape, MACs and params computed here,
    independently of convcost (per sample, 'same' padding)."""
    h, w, c = draw(st.integers(1, 12)), draw(st.integers(1, 12)), 2 * draw(st.integers(1, 8))
    spec = f"{h}x{w}x{c}"
    macs = params = 0
    for _ in range(draw(st.integers(1, 6))):
        form = draw(st.sampled_from(["conv", "se", "gate", "split", "shuffle", "norm", "act"]))
        if form == "conv":
            k, s, out = draw(st.integers(1, 3)), draw(st.integers(1, 2)), 2 * draw(st.integers(1, 6))
            h, w = -(-h // s), -(-w // s)
            macs += k * k * c * out * h * w
            params += k * k * c * out + out
            spec += f" -> {k}x{k}({out}, s={s})"
            c = out
        elif form == "se":
            r = draw(st.integers(1, 4))
            macs += 2 * c * r
            params += c * r + r + r * c + c
            spec += f" -> gate[gap -> 1x1({r}) -> relu -> 1x1({c}) -> hardsigmoid]"
        elif form == "gate":
            macs += c * c * h * w
            params += c * c
            spec += f" -> gate[1x1({c}, nobias) -> sigmoid]"
        elif form == "split":
            half = c // 2
            macs += half * half * h * w
            params += half * half + half + 2 * half  # conv weights and bias, ln
            spec += f" -> split[id | 1x1({half}) -> ln]"
        elif form == "shuffle":
            spec += f" -> shuffle({draw(st.sampled_from([g for g in (1, 2, c) if c % g == 0]))})"
        elif form == "norm":
            word, extra = draw(st.sampled_from([("ln", 2 * c), ("gn(2)", 2 * c),
                                                ("instancenorm", 0), ("scale", c),
                                                ("prelu", c), ("gn(1, noaffine)", 0)]))
            params += extra
            spec += f" -> {word}"
        else:
            spec += " -> " + draw(st.sampled_from(["hardswish", "mish", "elu", "leakyrelu",
                                                   "droppath", "silu"]))
    return spec, (h, w, c), macs, params


@SETTINGS
@given(_modern_chain(), st.integers(1, 3))
def test_modern_forms_match_an_independent_count(case: tuple[str, tuple[int, int, int], int, int],
                                                 batch: int) -> None:
    spec, shape, macs, params = case
    result = analyze_source(Source("<arg>", spec), Options(batch=batch), bare_names="text")
    assert result.errors == [], [str(error) for error in result.errors]
    report = result.reports[0]
    assert tuple(report.output) == shape
    assert report.totals.macs == batch * macs
    assert report.totals.params == params
