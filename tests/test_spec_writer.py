"""Programs written back as specs (convcost.importers.spec_writer): every example and zoo
model re-analyses to identical totals, the text reads as a person would write it, and a graph
the language cannot write is a located error naming the node."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from convcost.analysis import Analysis, Options, analyze_source, analyze_text
from convcost.errors import Source, SpecError
from convcost.importers.spec_writer import SpecWriter, program_to_spec, round_trip_problems
from convcost.importers.structure import Block, recover
from convcost.model.program import Program, Shape, Step

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "examples").glob("*.convcost")) + \
    sorted((ROOT / "examples" / "zoo").glob("*.convcost"))


def _analyse(path: Path) -> Analysis:
    result = analyze_source(Source(str(path), path.read_text(encoding="utf-8")), Options())
    assert not result.errors
    return result


def _same_totals(program: Program, text: str) -> None:
    """``text`` re-analyses to ``program``'s totals, peak memory and output shape."""
    from convcost.cost.report import build_report

    again = analyze_text(text, source_name="<written>")
    assert not again.errors, [str(error) for error in again.errors]
    assert len(again.models) == 1
    before = build_report(program, source="", spec="")
    after = again.models[0].report
    assert after.totals == before.totals
    assert after.output == before.output
    assert after.input == before.input


@pytest.mark.parametrize("path", SPECS, ids=lambda path: path.stem)
def test_every_example_round_trips_to_identical_totals(path: Path) -> None:
    for model in _analyse(path).models:
        _same_totals(model.program, program_to_spec(model.program))


def test_the_writer_reads_no_step_text() -> None:
    """Structure and layers come from kinds and attributes: blank texts change nothing."""
    path = ROOT / "examples" / "zoo" / "efficientnet_b0.convcost"
    program = _analyse(path).models[0].program
    blank = program._replace(steps=tuple(step._replace(text="?") for step in program.steps))
    assert program_to_spec(blank) == program_to_spec(program)


def test_several_models_share_fragments_and_get_unique_names() -> None:
    path = ROOT / "examples" / "zoo" / "resnet50.convcost"
    program = _analyse(path).models[0].program
    writer = SpecWriter()
    writer.add(program)
    writer.add(program)
    text = writer.text(["two copies"])
    assert text.count("let res2048 =") == 1
    assert "resnet50: 224x224x3" in text and "resnet50_2: 224x224x3" in text
    again = analyze_text(text)
    assert not again.errors and len(again.models) == 2
    assert not round_trip_problems([program, program], text)


def _program(text: str) -> Program:
    result = analyze_text(text)
    assert not result.errors
    return result.models[0].program


def test_golden_residual_stage() -> None:
    program = _program("56x56x64 -> 3x3(64, s=2, nobias) -> bn -> relu -> "
                       "res[3x3(64, nobias) -> bn -> relu -> 3x3(64, nobias) -> bn] -> relu -> "
                       "res[3x3(64, nobias) -> bn -> relu -> 3x3(64, nobias) -> bn] -> relu -> "
                       "res[3x3(128, s=2, nobias) -> bn | 1x1(128, s=2, nobias) -> bn] -> gap "
                       "-> fc(10)")
    assert program_to_spec(program, name="net") == """\
let res64 = res[3x3(64, nobias) -> bn -> relu -> 3x3(64, nobias) -> bn]
let res128_down = res[3x3(128, s=2, nobias) -> bn | 1x1(128, s=2, nobias) -> bn]

net: 56x56x64
    # 28x28x64, from node 1
    -> 3x3(64, s=2, nobias) -> bn -> relu -> ($res64 -> relu)*2
    # 1x1x10, from node 8.body.1
    -> $res128_down -> gap -> fc(10)
"""


def test_golden_branches_gate_split_and_shuffle() -> None:
    program = _program(
        "28x28x32 -> [1x1(16) | maxpool3x3(s=1, p=1) -> 1x1(16)] -> "
        "gate[gap -> 1x1(8) -> relu -> 1x1(32) -> hardsigmoid] -> "
        "split[id | 3x3(dw) -> 1x1(16)] -> shuffle(2) -> split[id | 3x3(dw) -> 1x1(16)] -> "
        "shuffle(2) -> deconv4x4(8, s=2, p=1) -> up2 -> avgpool3x3(s=2, p=valid, ceil)")
    assert program_to_spec(program, name="mix", header=["a header"]) == """\
# a header

let split32 = split[id | 3x3(dw) -> 1x1(16)]

mix: 28x28x32
    # 28x28x32, from node 1.b1.1
    -> [1x1(16) | maxpool3x3(s=1) -> 1x1(16)]
    -> gate[gap -> 1x1(8) -> relu -> 1x1(32) -> hardsigmoid] -> ($split32 -> shuffle(2))*2
    # 56x56x8, from node 7
    -> deconv4x4(8, s=2) -> up2 -> avgpool3x3(s=2, p=valid, ceil)
"""
    _same_totals(program, program_to_spec(program))


def test_layers_written_from_their_attributes() -> None:
    layers = ["3x3(32, g=4, d=2, nobias)", "1x7(32, p=1x2)", "3x3(32, p=1)", "3x3(32, s=2, p=1)",
              "3x3(64, dw, s=2x1)",
              "5x5(64, p=valid)", "maxpool2x2", "ln(noaffine)", "gn(8)", "instancenorm(affine)",
              "prelu", "dropout", "droppath", "id", "scale", "silu", "fc(10, nobias)"]
    program = _program("16x16x32 -> " + " -> ".join(layers))
    text = program_to_spec(program)
    body = " -> ".join(line.strip().removeprefix("-> ") for line in text.splitlines()
                       if line.startswith("    ->"))
    assert "1x7(32, p=1x2) -> 3x3(32) -> 3x3(32, s=2, p=1)" in body  # p=1 is 'same' at s=1
    for written in ["3x3(32, g=4, d=2, nobias)", "3x3(64, dw, s=2x1)",
                    "5x5(64, p=valid)", "maxpool2x2", "ln(noaffine)", "gn(8)",
                    "instancenorm(affine)", "fc(10, nobias)"]:
        assert written in body
    _same_totals(program, text)


def test_densenet_concatenations_of_all_earlier_features() -> None:
    """cat(x), cat(x, n1), cat(x, n1, n2): as torchvision's DenseNet exports, rewritten as
    [id] -> [id | f] -> [id | f] with the same MACs, params, ops and channels."""
    x = Shape(8, 8, 4)

    def conv(index: int, source: int, shape: Shape) -> Step:
        return Step(index=index, path=f"conv{index}", kind="conv", text="", input=shape,
                    output=Shape(8, 8, 2), inputs=(source,), out=index, operands=(shape,),
                    kernel_hw=(3, 3), padding=(1, 1, 1, 1))

    c1 = Step(index=1, path="cat1", kind="concat", text="", input=x, output=x, inputs=(0,),
              out=1, operands=(x,))
    n1 = conv(2, 1, x)
    c2 = Step(index=3, path="cat2", kind="concat", text="", input=x, output=Shape(8, 8, 6),
              inputs=(0, 2), out=3, operands=(x, Shape(8, 8, 2)))
    n2 = conv(4, 3, Shape(8, 8, 6))
    c3 = Step(index=5, path="cat3", kind="concat", text="", input=x, output=Shape(8, 8, 8),
              inputs=(0, 2, 4), out=5, operands=(x, Shape(8, 8, 2), Shape(8, 8, 2)))
    program = Program("dense", x, (c1, n1, c2, n2, c3), 5)
    text = program_to_spec(program)
    assert "let dense2 = [id | 3x3(2, nobias)]" in text
    assert "-> [id] -> $dense2*2" in text
    again = analyze_text(text).models[0].report
    from convcost.cost.report import build_report
    before = build_report(program, source="", spec="")
    assert (again.totals.macs, again.totals.params, again.totals.other_ops, again.output) == \
        (before.totals.macs, before.totals.params, before.totals.other_ops, before.output)


def _not_series_parallel() -> Program:
    """a = relu(x); b = relu(x); c = a + b; d = c + a: ``a`` escapes the block ending at c."""
    x = Shape(4, 4, 8)
    a = Step(index=1, path="/a/Relu", kind="relu", text="", input=x, output=x, out=1)
    b = Step(index=2, path="/b/Relu", kind="relu", text="", input=x, output=x, out=2)
    c = Step(index=3, path="/c/Add", kind="add", text="", input=x, output=x, inputs=(1, 2),
             out=3, operands=(x, x))
    d = Step(index=4, path="/d/Add", kind="add", text="", input=x, output=x, inputs=(3, 1),
             out=4, operands=(x, x))
    return Program("knot", x, (a, b, c, d), 4, Source("knot.onnx", ""))


def test_a_graph_that_is_not_series_parallel_names_the_node() -> None:
    with pytest.raises(SpecError) as caught:
        program_to_spec(_not_series_parallel())
    message = str(caught.value)
    assert message.startswith("knot.onnx: error: cannot write 'knot' as a chain: node '/c/Add'")
    assert "it reads the output of '/a/Relu'" in message and "not series-parallel" in message


def test_unwritable_steps_are_located_errors() -> None:
    x = Shape(4, 4, 8)
    lone_slice = Step(index=1, path="/Slice", kind="slice", text="", input=x,
                      output=Shape(4, 4, 4), channels=(0, 4))
    with pytest.raises(SpecError, match=r"node '/Slice' \(slice\): a channel slice \[0:4\]"):
        program_to_spec(Program("s", x, (lone_slice,), 1))
    lopsided = Step(index=1, path="/Conv", kind="conv", text="", input=x, output=Shape(5, 5, 8),
                    kernel_hw=(3, 3), padding=(0, 3, 0, 3))
    with pytest.raises(SpecError, match="neither symmetric nor 'same'"):
        program_to_spec(Program("p", x, (lopsided,), 1))
    square = Step(index=1, path="/Mul", kind="mul", text="", input=x, output=x,
                  inputs=(0, 0), operands=(x, x))
    assert "gate[id]" in program_to_spec(Program("sq", x, (square,), 1))
    unused = Step(index=1, path="/Unused", kind="relu", text="", input=x, output=x)
    used = Step(index=2, path="/Used", kind="relu", text="", input=x, output=x, out=2)
    with pytest.raises(SpecError, match="node '/Unused'.*never used"):
        program_to_spec(Program("u", x, (unused, used), 2))


def test_recovered_blocks_keep_execution_order() -> None:
    program = _program("8x8x8 -> res[1x1(8) | 3x3(8)]")
    (block,) = recover(program)
    assert isinstance(block, Block) and block.form == "res"
    assert block.first.path == "1.body.1"


#: Layers that keep the channels (so residual blocks fit) and the map size.
_LEAF = st.sampled_from(["3x3(dw)", "1x1(dw, nobias)", "relu", "bn", "maxpool3x3(s=1)",
                         "ln", "3x3(dw, d=2)", "dropout", "avgpool3x3(s=1, p=1)"])


def _sequence(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        items = _LEAF
    else:
        inner = _sequence(depth - 1)
        items = st.one_of(
            _LEAF,
            inner.map(lambda body: f"res[{body}]"),
            st.tuples(inner, inner).map(lambda pair: f"[{pair[0]} | {pair[1]}]"),
            inner.map(lambda body: f"gate[{body} -> sigmoid]"),
            inner.map(lambda body: f"split[id | {body}]"),
            st.tuples(inner, st.integers(2, 3)).map(lambda rep: f"({rep[0]})*{rep[1]}"),
        )
    return st.lists(items, min_size=1, max_size=4).map(" -> ".join)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_sequence(2), st.sampled_from(["", " -> avgpool2x2 -> [id | 1x1(4)] -> up2"]))
def test_random_chains_round_trip(body: str, tail: str) -> None:
    result = analyze_text(f"16x16x8 -> {body}{tail}")
    assume(not result.errors)
    program = result.models[0].program
    _same_totals(program, program_to_spec(program))


def test_deeply_nested_blocks_are_refused_not_a_recursion_error() -> None:
    x = Shape(2, 2, 2)
    steps = [Step(index=1, path="r1", kind="relu", text="", input=x, output=x)]
    opened, value = [0], 1
    for index in range(2, 301):  # 300 residual blocks, each inside the previous one
        steps.append(Step(index=index, path=f"r{index}", kind="relu", text="", input=x,
                          output=x, inputs=(value,), out=index))
        opened.append(value)
        value = index
    for block in reversed(opened):
        index = len(steps) + 1
        steps.append(Step(index=index, path=f"a{index}", kind="add", text="", input=x, output=x,
                          inputs=(value, block), out=index, operands=(x, x)))
        value = index
    with pytest.raises(SpecError, match="blocks nest more than 64 levels deep"):
        program_to_spec(Program("deep", x, tuple(steps), value))


def test_flattened_concatenations_nest_again() -> None:
    """cat(a, b1, b2) with b1 and b2 both from b, as Inception-v3 exports cat(a, cat(b1, b2)),
    is written with the inner branch group."""
    x = Shape(4, 4, 8)

    def conv(index: int, source: int, shape: Shape, cout: int) -> Step:
        return Step(index=index, path=f"/conv{index}", kind="conv", text="", input=shape,
                    output=Shape(4, 4, cout), inputs=(source,), out=index, operands=(shape,))

    a, b = conv(1, 0, x, 2), conv(2, 0, x, 4)
    b1, b2 = conv(3, 2, Shape(4, 4, 4), 3), conv(4, 2, Shape(4, 4, 4), 5)
    cat = Step(index=5, path="/Concat", kind="concat", text="", input=x, output=Shape(4, 4, 10),
               inputs=(1, 3, 4), out=5, operands=(a.output, b1.output, b2.output))
    program = Program("flat", x, (a, b, b1, b2, cat), 5)
    text = program_to_spec(program)
    assert "[1x1(2, nobias) | 1x1(4, nobias) -> [1x1(3, nobias) | 1x1(5, nobias)]]" in text
    from convcost.cost.report import build_report
    again = analyze_text(text).models[0].report
    before = build_report(program, source="", spec="")
    assert (again.totals.macs, again.totals.params, again.totals.other_ops, again.output) == \
        (before.totals.macs, before.totals.params, before.totals.other_ops, before.output)


def test_a_program_without_steps_is_written_with_id() -> None:
    text = program_to_spec(Program("empty", Shape(2, 2, 3), (), 0))
    assert text == "empty: 2x2x3\n    -> id\n"
    assert not analyze_text(text).errors
