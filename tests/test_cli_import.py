"""``convcost import``: specs and ONNX graphs written as spec files that re-analyse to the
same totals; errors located, exit 2, and one bad input never hides the others."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from convcost.analysis import analyze_text
from convcost.cost.report import build_report

ROOT = Path(__file__).resolve().parent.parent
#: The torchvision zoo exports: CONVCOST_ZOO_ONNX=DIR tests every file in DIR (as
#: tests/test_onnx_zoo.py does); without it, a representative few from /tmp/zoo_onnx.
ZOO_ONNX = Path(os.environ.get("CONVCOST_ZOO_ONNX") or "/tmp/zoo_onnx")

Run = Callable[..., Result]


def _totals(text: str) -> list[tuple[int, int, int, int, tuple[int, ...]]]:
    result = analyze_text(text, source_name="<imported>")
    assert not result.errors, [str(error) for error in result.errors]
    return [(model.report.totals.macs, model.report.totals.params, model.report.totals.buffers,
             model.report.totals.other_ops, tuple(model.report.output))
            for model in result.models]


def test_import_a_spec_file_to_stdout(run: Run) -> None:
    path = ROOT / "examples" / "zoo" / "resnet18.convcost"
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    from convcost.inputs import source_path

    assert result.stdout.startswith(f"# written by convcost import from {source_path(str(path))}\n")
    assert "resnet18: 224x224x3" in result.stdout
    original = analyze_text(path.read_text(encoding="utf-8"))
    assert _totals(result.stdout) == _totals(path.read_text(encoding="utf-8"))
    assert len(original.models) == 1


def test_import_to_a_file(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "out.convcost"
    result = run("import", str(ROOT / "examples" / "resnet_stage.convcost"), "-o", str(target))
    assert result.exit_code == 0
    assert result.stdout == ""
    text = target.read_text(encoding="utf-8")
    assert "let res256 = res[1x1(64) -> 3x3(64) -> 1x1(256)]" in text
    assert "stage: 56x56x256" in text and "-> $res256*3" in text
    again = run("analyze", str(target), "--format", "json")
    assert again.exit_code == 0


def test_bad_inputs_are_located_and_do_not_hide_the_others(run: Run, tmp_path: Path) -> None:
    result = run("import", "8x8x8 -> 3x3(8) -> relu", "8x8x8 -> 9x9(4, p=valid)",
                 str(tmp_path / "missing.onnx"))
    assert result.exit_code == 2
    assert "model: 8x8x8" in result.stdout
    assert "<arg>:1:10: error: output size below 1" in result.stderr
    assert "missing.onnx: error:" in result.stderr
    assert "1 model written; 2 errors" in result.stderr


def test_unwritable_output_file_is_exit_2(run: Run, tmp_path: Path) -> None:
    result = run("import", "8x8x8 -> relu", "-o", str(tmp_path / "no" / "such" / "dir.txt"))
    assert result.exit_code == 2


def test_header_naming_many_sources_is_wrapped(run: Run, tmp_path: Path) -> None:
    """The sources were listed on one comment line (2,700 characters for the zoo)."""
    for number in range(30):
        (tmp_path / f"model_number_{number}.convcost").write_text(f"m{number}: 8x8x3 -> relu\n")
    result = run("import", str(tmp_path))
    assert result.exit_code == 0, result.output
    header = result.stdout.split("\n\n")[0].splitlines()
    assert len(header) > 1 and all(len(line) <= 100 for line in header)
    assert all(line.startswith("# ") for line in header)
    assert " ".join(line[2:] for line in header).count("model_number_") == 30


@pytest.mark.parametrize("command", [["import"], ["export", "--to", "torch"]])
def test_output_over_an_input_is_refused(run: Run, tmp_path: Path, command: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`-o` naming an input (however spelled) would destroy it: exit 2, the file intact."""
    spec = tmp_path / "net.convcost"
    text = "net: 8x8x3 -> 3x3(4)\n"
    spec.write_text(text)
    monkeypatch.chdir(tmp_path)
    result = run(command[0], "net.convcost", *command[1:], "-o", str(spec))
    assert result.exit_code == 2, result.output
    assert f"{spec}: error: refusing to write over the input 'net.convcost'" in result.stderr
    assert spec.read_text() == text
    result = run(command[0], str(tmp_path), *command[1:], "-o", "./net.convcost")
    assert result.exit_code == 2 and "refusing to write over" in result.stderr
    assert spec.read_text() == text
    result = run(command[0], "net.convcost", *command[1:], "-o", "out.txt")
    assert result.exit_code == 0 and (tmp_path / "out.txt").is_file()


# -- ONNX graphs built with onnx.helper ------------------------------------------------------


def _onnx() -> Any:
    pytest.importorskip("convcost.importers.onnx")
    return pytest.importorskip("onnx")


def _conv(onnx: Any, name: str, source: str, out: str, cin: int, cout: int,
          initializers: list[Any], kernel: int = 3, stride: int = 1) -> Any:
    from onnx import TensorProto, helper

    weight = helper.make_tensor(f"{name}.w", TensorProto.FLOAT, [cout, cin, kernel, kernel],
                                [0.0] * (cout * cin * kernel * kernel))
    bias = helper.make_tensor(f"{name}.b", TensorProto.FLOAT, [cout], [0.0] * cout)
    initializers += [weight, bias]
    pad = kernel // 2
    return helper.make_node("Conv", [source, f"{name}.w", f"{name}.b"], [out], name=name,
                            kernel_shape=[kernel, kernel], pads=[pad] * 4,
                            strides=[stride, stride])


def _model(onnx: Any, nodes: list[Any], initializers: list[Any], output: str,
           out_shape: list[int], channels: int = 8) -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 16, 16])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_shape)], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    data: bytes = model.SerializeToString()
    return data


def _residual_net(onnx: Any) -> bytes:
    from onnx import helper

    init: list[Any] = []
    nodes = [
        _conv(onnx, "/stem/Conv", "x", "s", 8, 8, init),
        helper.make_node("Relu", ["s"], ["s1"], name="/stem/Relu"),
    ]
    value = "s1"
    for block in range(2):  # two identical residual blocks
        prefix = f"/layer{block}"
        nodes += [
            _conv(onnx, f"{prefix}/conv1/Conv", value, f"{prefix}/a", 8, 8, init),
            helper.make_node("Relu", [f"{prefix}/a"], [f"{prefix}/b"], name=f"{prefix}/Relu"),
            _conv(onnx, f"{prefix}/conv2/Conv", f"{prefix}/b", f"{prefix}/c", 8, 8, init),
            helper.make_node("Add", [f"{prefix}/c", value], [f"{prefix}/d"],
                             name=f"{prefix}/Add"),
            helper.make_node("Relu", [f"{prefix}/d"], [f"{prefix}/e"],
                             name=f"{prefix}/Relu_1"),
        ]
        value = f"{prefix}/e"
    nodes += [
        _conv(onnx, "/left/Conv", value, "l", 8, 4, init, kernel=1),
        _conv(onnx, "/right/Conv", value, "r", 8, 4, init),
        helper.make_node("Concat", ["l", "r"], ["cat"], name="/Concat", axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="/GlobalAveragePool"),
        helper.make_node("Sigmoid", ["gap"], ["sig"], name="/Sigmoid"),
        helper.make_node("Mul", ["cat", "sig"], ["y"], name="/Mul"),
    ]
    return _model(onnx, nodes, init, "y", [1, 8, 16, 16])


def _reference(data: bytes, name: str) -> tuple[int, int, int, int, tuple[int, ...]]:
    from convcost.importers.onnx import read_onnx

    program = read_onnx(data, name, size=None, batch=1, source=name)
    totals = build_report(program, source="", spec="").totals
    return (totals.macs, totals.params, totals.buffers, totals.other_ops,
            tuple(program.output))


def test_onnx_graph_round_trips_through_import(run: Run, tmp_path: Path) -> None:
    onnx = _onnx()
    data = _residual_net(onnx)
    path = tmp_path / "tiny.onnx"
    path.write_bytes(data)
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "tiny: 16x16x8" in text
    assert "# 16x16x8, from node /stem/Conv" in text
    assert "let res8 = res[3x3(8) -> relu -> 3x3(8)]" in text
    assert "-> 3x3(8) -> relu -> ($res8 -> relu)*2 -> [1x1(4) | 3x3(4)] -> gate[gap -> sigmoid]" \
        in text
    assert _totals(text) == [_reference(data, "tiny")]
    bigger = run("import", str(path), "--size", "32")
    assert bigger.exit_code == 0 and "tiny: 32x32x8" in bigger.stdout


def test_onnx_graph_that_is_not_series_parallel(run: Run, tmp_path: Path) -> None:
    onnx = _onnx()
    from onnx import helper

    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="/a/Relu"),
        helper.make_node("Sigmoid", ["x"], ["b"], name="/b/Sigmoid"),
        helper.make_node("Add", ["a", "b"], ["c"], name="/c/Add"),
        helper.make_node("Add", ["c", "a"], ["y"], name="/d/Add"),
    ]
    path = tmp_path / "knot.onnx"
    path.write_bytes(_model(onnx, nodes, [], "y", [1, 8, 16, 16]))
    result = run("import", str(path))
    assert result.exit_code == 2
    assert "node '/c/Add'" in result.stderr and "series-parallel" in result.stderr
    assert "Traceback" not in result.stderr
    analysed = run("analyze", str(path), "--format", "json")  # analyze still works on it
    assert analysed.exit_code == 0
    assert json.loads(analysed.stdout)["models"][0]["totals"]["other_ops"] > 0


def test_not_an_onnx_file_is_exit_2(run: Run, tmp_path: Path) -> None:
    _onnx()
    path = tmp_path / "junk.onnx"
    path.write_bytes(b"\x08\x07not a model at all")
    result = run("import", str(path), "8x8x8 -> relu")
    assert result.exit_code == 2
    assert "junk.onnx" in result.stderr and "Traceback" not in result.stderr
    assert "model: 8x8x8" in result.stdout


#: The zoo exports tested by default: one of each structure (dense concats, channel split and
#: shuffle, branches with ceil-mode pools, gates, group convs), small enough to read fast;
#: CONVCOST_ZOO_ONNX=DIR tests all (so does benchmarks/import_zoo.py).
ZOO_DEFAULT = {"densenet121", "densenet121_folded", "shufflenet_v2_x1_0", "googlenet",
               "efficientnet_b0_folded", "mobilenet_v3_small", "regnet_y_400mf"}
ZOO_FILES = [path for path in sorted(ZOO_ONNX.glob("*.onnx")) if ZOO_ONNX.is_dir()
             and (os.environ.get("CONVCOST_ZOO_ONNX") or path.stem in ZOO_DEFAULT)]


@pytest.mark.parametrize("path", ZOO_FILES, ids=lambda path: path.stem)
def test_torchvision_zoo_exports_round_trip(run: Run, path: Path) -> None:
    """The torchvision exports (bn kept and folded), when present on this machine."""
    _onnx()
    result = run("import", str(path))
    assert result.exit_code == 0, result.stderr
    from convcost.importers.onnx_wire import read_model_bytes

    data = read_model_bytes(str(path), 1 << 31)
    assert _totals(result.stdout) == [_reference(data, path.stem)]
