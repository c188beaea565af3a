"""ONNX input: small graphs built with onnx.helper, lowered and compared with the same model
written as a spec (same op kinds, same counts), plus the error paths and the CLI."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from convcost.analysis import Options, analyze_text
from convcost.cost.report import ModelReport, build_report
from convcost.errors import OnnxError
from convcost.importers.onnx import read_onnx
from convcost.model.program import Program, Shape

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _init(name: str, dims: Sequence[int], values: Sequence[float] | None = None,
          dtype: int = TensorProto.FLOAT) -> Any:
    count = 1
    for dim in dims:
        count *= dim
    data = list(values) if values is not None else [0.5] * count
    return helper.make_tensor(name, dtype, list(dims), data)


def _model(nodes: list[Any], inits: list[Any], dims: Sequence[int | str | None] = (1, 8, 16, 16),
           output: str = "y", opset: int = 17) -> bytes:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(dims))],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return bytes(model.SerializeToString())


def _read(data: bytes, size: tuple[int, int] | None = None, batch: int | None = None
          ) -> Program:
    return read_onnx(data, "m", size=size, batch=batch, source="m.onnx")


def _report(program: Program) -> ModelReport:
    return build_report(program, source="m.onnx", spec="", batch=1, dtype="float32")


def _spec(text: str) -> ModelReport:
    result = analyze_text(text, Options())
    assert not result.errors, [str(error) for error in result.errors]
    return result.reports[0]


def _same(program: Program, spec: str) -> None:
    """The program's kinds, shapes and totals equal the spec's."""
    ours, theirs = _report(program), _spec(spec)
    assert [(layer.kind, layer.output) for layer in ours.layers] == \
        [(layer.kind, layer.output) for layer in theirs.layers]
    assert ours.totals == theirs.totals


def _conv(name: str, x: str, y: str, cin: int, cout: int, k: int = 3, bias: bool = False,
          **attrs: Any) -> tuple[Any, list[Any]]:
    inputs = [x, f"{name}.w"] + ([f"{name}.b"] if bias else [])
    inits = [_init(f"{name}.w", (cout, cin // attrs.get("group", 1), k, k))]
    if bias:
        inits.append(_init(f"{name}.b", (cout,)))
    return helper.make_node("Conv", inputs, [y], name=name, kernel_shape=[k, k], **attrs), inits


def test_conv_variants_match_specs() -> None:
    node, inits = _conv("c", "x", "y", 8, 16, pads=[1, 1, 1, 1], strides=[2, 2])
    program = _read(_model([node], inits))
    assert program.steps[0].path == "c" and program.steps[0].text == "3x3(16, s=2, p=1, nobias)"
    _same(program, "16x16x8 -> 3x3(16, s=2, p=1, nobias)")
    node, inits = _conv("c", "x", "y", 8, 8, group=8, bias=True, dilations=[2, 2],
                        pads=[2, 2, 2, 2])
    _same(_read(_model([node], inits)), "16x16x8 -> 3x3(dw, p=2, d=2)")
    node, inits = _conv("c", "x", "y", 8, 16, k=4, auto_pad="SAME_UPPER", strides=[3, 3])
    _same(_read(_model([node], inits)), "16x16x8 -> 4x4(16, s=3, nobias)")
    node, inits = _conv("c", "x", "y", 8, 16, k=5, auto_pad="VALID", group=2)
    _same(_read(_model([node], inits)), "16x16x8 -> 5x5(16, g=2, p=valid, nobias)")


def test_conv_transpose_matches_deconv() -> None:
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], name="up",
                            kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])
    program = _read(_model([node], [_init("w", (8, 4, 4, 4)), _init("b", (4,))]))
    _same(program, "16x16x8 -> deconv4x4(4, s=2, p=1)")
    assert program.output == Shape(32, 32, 4)
    for attrs in ({"auto_pad": "SAME_UPPER"}, {"output_shape": [32, 32]}):
        node = helper.make_node("ConvTranspose", ["x", "w"], ["y"], kernel_shape=[3, 3],
                                strides=[2, 2], **attrs)
        _same(_read(_model([node], [_init("w", (8, 4, 3, 3))])),
              "16x16x8 -> deconv3x3(4, s=2, nobias)")
    node = helper.make_node("Sub", ["x", "x"], ["y"], name="minus")
    with pytest.raises(OnnxError, match="'minus' \\(Sub\\): this op is supported on constants"):
        _read(_model([node], []))


def test_classifier_gemm_matmul_and_bn() -> None:
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "t", "m", "v"], ["b"]),
             helper.make_node("GlobalAveragePool", ["b"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w", "c"], ["h"], transB=1),
             helper.make_node("MatMul", ["h", "w2"], ["y"])]
    inits = [_init(name, (8,)) for name in "stmv"] + [
        _init("w", (10, 8)), _init("c", (10,)), _init("w2", (10, 3))]
    _same(_read(_model(nodes, inits)), "16x16x8 -> bn -> gap -> fc(10) -> fc(3, nobias)")


def test_flatten_into_fc_counts_every_input_element() -> None:
    nodes = [helper.make_node("Flatten", ["x"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    _same(_read(_model(nodes, [_init("w", (7, 8 * 16 * 16))])),
          "16x16x8 -> fc(7, nobias)")


def test_activations_clip_and_fused_patterns() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Clip", ["a", "zero", "six"], ["b"]),
             helper.make_node("Sigmoid", ["b"], ["s"]),
             helper.make_node("Mul", ["b", "s"], ["c"]),          # silu
             helper.make_node("HardSigmoid", ["c"], ["h"], alpha=1 / 6),
             helper.make_node("Mul", ["h", "c"], ["d"]),          # hardswish
             helper.make_node("Div", ["d", "sqrt2"], ["e1"]),     # exact gelu
             helper.make_node("Erf", ["e1"], ["e2"]),
             helper.make_node("Add", ["e2", "one"], ["e3"]),
             helper.make_node("Mul", ["d", "e3"], ["e4"]),
             helper.make_node("Mul", ["e4", "half"], ["g"]),
             helper.make_node("Tanh", ["g"], ["t"]),
             helper.make_node("Clip", ["t"], ["u"], ),
             helper.make_node("Clip", ["u", "minus", ""], ["y"])]
    inits = [_init("zero", (), [0.0]), _init("six", (), [6.0]), _init("sqrt2", (), [2 ** 0.5]),
             _init("one", (), [1.0]), _init("half", (), [0.5]), _init("minus", (), [-1.0])]
    program = _read(_model(nodes, inits))
    assert [step.kind for step in program.steps] == \
        ["relu", "relu6", "silu", "hardswish", "gelu", "tanh", "relu6", "relu6"]
    assert program.steps[-1].text == "clip(-1.0, None)"
    assert program.steps[-2].text == "clip(None, None)"
    _same(program, "16x16x8 -> relu -> relu6 -> silu -> hardswish -> gelu -> tanh -> relu6 "
                   "-> relu6")


def test_clip_bounds_and_activation_rates_reach_the_export() -> None:
    """Clip(-1, 1) was exported as nn.ReLU6 and LeakyRelu(alpha=0.2) as nn.LeakyReLU() with
    the default slope: same counts, other values. The bounds and rates are kept."""
    from convcost.export import export_torch

    nodes = [helper.make_node("LeakyRelu", ["x"], ["a"], alpha=0.2),
             helper.make_node("Elu", ["a"], ["b"], alpha=0.5),
             helper.make_node("LeakyRelu", ["b"], ["c"]),
             helper.make_node("Clip", ["c", "minus", "one"], ["d"]),
             helper.make_node("Clip", ["d", "minus", ""], ["y"])]
    program = _read(_model(nodes, [_init("minus", (), [-1.0]), _init("one", (), [1.0])]))
    assert [step.text for step in program.steps] == \
        ["leakyrelu(0.2)", "elu(0.5)", "leakyrelu", "clip(-1.0, 1.0)", "clip(-1.0, None)"]
    _same(program, "16x16x8 -> leakyrelu(0.2) -> elu(0.5) -> leakyrelu -> relu6 -> relu6")
    source = export_torch([program]).source
    for module in ("nn.LeakyReLU(negative_slope=0.2)", "nn.ELU(alpha=0.5)", "nn.LeakyReLU()",
                   "nn.Hardtanh(-1.0, 1.0)", "nn.Hardtanh(-1.0, float('+inf'))"):
        assert f"= {module}  #" in source, module
    assert "ReLU6" not in source
    compile(source, "<export>", "exec")


def test_se_gate_is_a_broadcast_mul() -> None:
    squeeze, i1 = _conv("fc1", "g", "r0", 8, 2, k=1, bias=True)
    excite, i2 = _conv("fc2", "r", "e", 2, 8, k=1, bias=True)
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"]), squeeze,
             helper.make_node("Relu", ["r0"], ["r"]), excite,
             helper.make_node("HardSigmoid", ["e"], ["h"]),
             helper.make_node("Mul", ["h", "x"], ["y"])]
    program = _read(_model(nodes, i1 + i2))
    gate = program.steps[-1]
    assert gate.kind == "mul" and gate.operands == (Shape(16, 16, 8), Shape(1, 1, 8))
    _same(program, "16x16x8 -> gate[gap -> 1x1(2) -> relu -> 1x1(8) -> hardsigmoid]")


def test_shuffle_split_and_folded_slices() -> None:
    """ShuffleNet's unit: chunk via Shape/Gather/Div/Slice, shuffle via Reshape-Transpose."""
    ints = TensorProto.INT64
    nodes = [helper.make_node("Shape", ["x"], ["shape"]),
             helper.make_node("Gather", ["shape", "one"], ["c"], axis=0),
             helper.make_node("Div", ["c", "two"], ["half"]),
             helper.make_node("Slice", ["x", "zero", "half", "one"], ["left"]),
             helper.make_node("Slice", ["x", "half", "big", "one"], ["right"]),
             helper.make_node("Relu", ["right"], ["r"]),
             helper.make_node("Concat", ["left", "r"], ["cat"], axis=1),
             helper.make_node("Reshape", ["cat", "five"], ["g"]),
             helper.make_node("Transpose", ["g"], ["t"], perm=[0, 2, 1, 3, 4]),
             helper.make_node("Reshape", ["t", "four"], ["s"]),
             helper.make_node("Split", ["s", "sizes"], ["p1", "p2"], axis=1),
             helper.make_node("Add", ["p1", "p2"], ["y"])]
    inits = [_init("one", (1,), [1], ints), _init("two", (1,), [2], ints),
             _init("zero", (1,), [0], ints), _init("big", (1,), [2 ** 62], ints),
             _init("five", (5,), [0, 2, 4, 16, 16], ints),
             _init("four", (4,), [-1, 8, 16, 16], ints), _init("sizes", (2,), [4, 4], ints)]
    program = _read(_model(nodes, inits))
    assert [step.kind for step in program.steps] == \
        ["slice", "slice", "relu", "concat", "shuffle", "slice", "slice", "add"]
    assert program.steps[1].channels == (4, 8) and program.steps[4].groups == 2
    assert program.output == Shape(16, 16, 4)
    # the shuffle's reshapes hard-code the export-time 16x16: only the channels matter
    assert _read(_model(nodes, inits), size=(8, 6)).output == Shape(8, 6, 4)
    assert _report(program).totals.other_ops == \
        _spec("16x16x8 -> split[id | relu] -> shuffle(2)").totals.other_ops + 16 * 16 * 4


def test_pools_reduce_mean_and_resize() -> None:
    nodes = [helper.make_node("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1], ceil_mode=1),
             helper.make_node("AveragePool", ["a"], ["b"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], count_include_pad=1),
             helper.make_node("Resize", ["b", "", "scales"], ["c"], mode="nearest"),
             helper.make_node("ReduceMean", ["c"], ["y"], axes=[2, 3], keepdims=0)]
    program = _read(_model(nodes, [_init("scales", (4,), [1, 1, 2, 2])]))
    _same(program, "16x16x8 -> maxpool3x3(s=2, p=1, ceil) -> avgpool3x3(s=1, p=1) -> up2 "
                   "-> gap")
    assert program.steps[1].pad_mode == "explicit"
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    assert _read(_model([node], [])).steps[0].pad_mode == "same"  # divisor excludes padding


def test_convnext_linear_layers_are_1x1_convs_with_bias() -> None:
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]),
             helper.make_node("LayerNormalization", ["t", "g", "b"], ["n"], axis=-1),
             helper.make_node("MatMul", ["n", "w"], ["m"]),
             helper.make_node("Add", ["bias", "m"], ["a"]),
             helper.make_node("Transpose", ["a"], ["u"], perm=[0, 3, 1, 2]),
             helper.make_node("Mul", ["scale", "u"], ["s"]),
             helper.make_node("Add", ["s", "x"], ["y"])]
    inits = [_init("g", (8,)), _init("b", (8,)), _init("w", (8, 8)), _init("bias", (8,)),
             _init("scale", (8, 1, 1))]
    program = _read(_model(nodes, inits))
    _same(program, "16x16x8 -> res[ln -> 1x1(8) -> scale]")
    assert program.steps[1].text == "1x1(8)" and program.steps[1].bias


def test_initializer_forwarded_through_identity_counts_per_use() -> None:
    first, inits = _conv("c1", "x", "a", 8, 8, k=3, pads=[1, 1, 1, 1])
    second = helper.make_node("Conv", ["a", "w_alias"], ["y"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1])
    nodes = [first, helper.make_node("Identity", ["c1.w"], ["w_alias"]), second]
    report = _report(_read(_model(nodes, inits)))
    assert report.totals.params == 2 * 8 * 8 * 9


def test_dynamic_dims_need_size_and_batch_folds() -> None:
    node, inits = _conv("c", "x", "y", 8, 8, k=1)
    data = _model([node], inits, dims=("N", 8, "H", "W"))
    with pytest.raises(OnnxError, match="dynamic height.*--size"):
        _read(data)
    assert _read(data, size=(10, 12)).output == Shape(10, 12, 8)
    assert _read(_model([node], inits), size=(4, 4)).input == Shape(4, 4, 8)


def test_unsupported_op_is_named_with_its_count() -> None:
    nodes = [helper.make_node("Relu", ["x"], ["a"]),
             helper.make_node("Abs", ["a"], ["b"], name="abs1"),
             helper.make_node("Abs", ["b"], ["y"], name="abs2")]
    with pytest.raises(OnnxError, match=r"unsupported op Abs: node 'abs1' is one of 2 Abs "
                                        r"nodes"):
        _read(_model(nodes, []))
    with pytest.raises(OnnxError, match="GELU pattern"):
        _read(_model([helper.make_node("Erf", ["x"], ["y"])], []))


def test_missing_external_data_still_analyses(tmp_path: Path) -> None:
    node, inits = _conv("c", "x", "y", 8, 16)
    weight = inits[0]
    weight.ClearField("float_data")
    weight.data_location = TensorProto.EXTERNAL
    entry = weight.external_data.add()
    entry.key, entry.value = "location", "missing_weights.bin"
    _same(_read(_model([node], [weight])), "16x16x8 -> 3x3(16, p=valid, nobias)")


def test_hostile_bytes_give_onnx_errors_only() -> None:
    node, inits = _conv("c", "x", "a", 8, 16, pads=[1, 1, 1, 1])
    nodes = [node, helper.make_node("Relu", ["a"], ["y"])]
    data = _model(nodes, inits)
    generator = random.Random(9)
    for _ in range(300):
        mutated = bytearray(data)
        for _ in range(generator.randint(1, 4)):
            mutated[generator.randrange(len(mutated))] = generator.randrange(256)
        cut = generator.choice([len(mutated), generator.randrange(len(mutated))])
        try:
            _read(bytes(mutated[:cut]))
        except OnnxError as error:
            assert str(error).startswith("m.onnx")
    for junk in (b"", b"\x08", b"hello", bytes(range(256)) * 4):
        with pytest.raises(OnnxError):
            _read(junk)


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def test_cli_analyses_onnx_beside_specs_and_bad_files(
        tmp_path: Path, run: Callable[..., Result], validate: Callable[[Any], None]) -> None:
    node, inits = _conv("c", "x", "y", 8, 16, pads=[1, 1, 1, 1])
    good = _write(tmp_path / "net.onnx", _model([node], inits))
    sniffed = _write(tmp_path / "net.model", _model([node], inits))
    bad = _write(tmp_path / "bad.onnx", b"\x08\x07garbage")
    result = run("analyze", good, bad, sniffed, "8x8x3 -> 3x3(4)", "--format", "json")
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    validate(document)
    assert [model["name"] for model in document["models"]] == ["net", "net.model",
                                                               "8x8x3 -> 3x3(4)"]
    assert document["models"][0]["totals"]["params"] == 16 * 8 * 9
    assert [error["kind"] for error in document["errors"]] == ["onnx"]
    assert "bad.onnx" in result.stderr and "Traceback" not in result.stderr
    table = run("analyze", str(tmp_path))
    assert table.exit_code == 2 and "net" in table.stdout  # the directory's *.onnx too
    piped = run("analyze", "-", "--format", "json", input=_model([node], inits))
    assert piped.exit_code == 0, piped.stderr
    assert json.loads(piped.stdout)["models"][0]["name"] == "onnx_model"


def test_without_onnx_installed_the_pip_command_is_given(
        tmp_path: Path, run: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    from convcost.importers import onnx_graph

    node, inits = _conv("c", "x", "y", 8, 16)
    path = _write(tmp_path / "net.onnx", _model([node], inits))
    monkeypatch.setattr(onnx_graph, "_MODEL_CLASS", [])
    for name in ("onnx", "onnx.onnx_ml_pb2"):
        monkeypatch.setitem(sys.modules, name, None)
    result = run("analyze", path)
    assert result.exit_code == 2
    assert "pip install 'convcost[onnx]'" in result.stderr


def test_spec_analysis_never_imports_onnx() -> None:
    code = ("import sys\nfrom convcost.analysis import analyze_arguments\n"
            "analyze_arguments(['examples/zoo/resnet18.convcost'])\n"
            "print(sorted(m for m in sys.modules if 'onnx' in m))")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            check=True).stdout
    assert output.strip() == "[]"


def test_weights_are_dropped_before_parsing_but_dims_and_constants_stay(tmp_path: Path) -> None:
    from convcost.importers.onnx_wire import KEEP_BYTES, read_model_bytes, strip_weights

    node, inits = _conv("c", "x", "a", 8, 256, k=5)  # 51,200 floats: dropped
    weight = inits[0]
    weight.ClearField("float_data")
    weight.raw_data = bytes(4 * 256 * 8 * 25)
    nodes = [node, helper.make_node("Reshape", ["a", "shape"], ["y"])]
    inits.append(_init("shape", (2,), [1, -1], TensorProto.INT64))  # kept: folded
    data = _model(nodes, inits)
    stripped = strip_weights(data)
    assert len(stripped) < KEEP_BYTES < len(data)
    path = _write(tmp_path / "big.onnx", data)
    assert read_model_bytes(path, 10 ** 9) == stripped
    assert _report(_read(stripped)).totals == _report(_read(data)).totals
    assert _read(stripped).steps[0].output == Shape(12, 12, 256)
    for junk in (b"\x08", b"\x0a\xff\xff", data[:-7]):
        assert strip_weights(junk) == junk  # not well formed: left for the parser


def test_structural_mutations_give_onnx_errors_only() -> None:
    """Hostile attributes, dims, op types and missing inputs: a located error, never a
    traceback (and never a hang)."""
    squeeze, i1 = _conv("fc1", "g", "r0", 8, 2, k=1, bias=True)
    body, i2 = _conv("body", "x", "b", 8, 8, pads=[1, 1, 1, 1], strides=[1, 1])
    nodes = [body, helper.make_node("GlobalAveragePool", ["b"], ["g"]), squeeze,
             helper.make_node("Relu", ["r0"], ["r"]),
             helper.make_node("Resize", ["r", "", "scales"], ["u"]),
             helper.make_node("MaxPool", ["b"], ["m"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Reshape", ["m", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    inits = i1 + i2 + [_init("scales", (4,), [1, 1, 8, 8]),
                       _init("shape", (2,), [0, -1], TensorProto.INT64),
                       _init("w", (3, 8 * 8 * 8))]
    original = onnx.load_from_string(_model(nodes, inits))
    assert _report(_read(original.SerializeToString())).totals.macs > 0
    generator = random.Random(3)
    values = [-5, -1, 0, 1, 2, 3, 2 ** 40]
    ops = ["Conv", "Gemm", "MaxPool", "Reshape", "Slice", "Split", "Concat", "Transpose",
           "Erf", "Clip", "Mul", "Add", "BatchNormalization", "ConvTranspose", "Shape"]
    for _ in range(400):
        model = onnx.ModelProto()
        model.CopyFrom(original)
        for _ in range(generator.randint(1, 3)):
            node = generator.choice(model.graph.node)
            choice = generator.randrange(5)
            if choice == 0 and node.attribute:
                attribute = generator.choice(node.attribute)
                if attribute.ints:
                    attribute.ints[generator.randrange(len(attribute.ints))] = \
                        generator.choice(values)
                else:
                    attribute.i = generator.choice(values)
            elif choice == 1 and node.input:
                del node.input[generator.randrange(len(node.input))]
            elif choice == 2:
                node.op_type = generator.choice(ops)
            elif choice == 3:
                tensor = generator.choice(model.graph.initializer)
                if tensor.dims:
                    tensor.dims[generator.randrange(len(tensor.dims))] = generator.choice(values)
            else:
                node.attribute.add().CopyFrom(helper.make_attribute(
                    generator.choice(["axis", "group", "perm", "pads", "auto_pad"]),
                    generator.choice([generator.choice(values), "SAME_LOWER", [0, 2, 3, 1]])))
        try:
            _read(model.SerializeToString(), size=generator.choice([None, (1, 1), (9, 5)]))
        except OnnxError as error:
            assert str(error).startswith("m.onnx")


@pytest.mark.parametrize("dims, message", [
    ((1, 8, 2**40, 16), "has a height of 1,099,511,627,776; sizes must be between 1 and"),
    ((1, 8, 0, 16), "has a dynamic height"),  # protobuf cannot tell a 0 from an unset dim
    ((1, -3, 16, 16), "dynamic channel count .*no option can give it"),
])
def test_input_sizes_outside_the_spec_bounds_are_refused(dims: tuple[int, ...],
                                                        message: str) -> None:
    with pytest.raises(OnnxError, match=message):
        _read(_model([helper.make_node("Relu", ["x"], ["y"], name="r")], [], dims=dims))


def test_layers_wider_than_the_spec_bounds_are_refused() -> None:
    # A weight of 2^40 output channels is only its dims: nothing is allocated.
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2**40, 8, 1, 1])
    data = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="wide")], [weight])
    with pytest.raises(OnnxError, match="node 'wide' .* sizes and channels must be at most"):
        _read(data)


def test_a_missing_onnx_file_is_no_such_file(run: Callable[..., Result]) -> None:
    result = run("analyze", "missing.onnx")
    assert result.exit_code == 2
    assert "missing.onnx: error: no such file: 'missing.onnx'" in result.output
