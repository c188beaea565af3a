"""The zoo as ONNX (optional): with torchvision importable, a few zoo models are exported
(batch norm kept and folded) and checked by ``benchmarks/onnx_zoo.py``; with
``CONVCOST_ZOO_ONNX=DIR`` set, every export in DIR is checked (all 38 files of the 19 models
pass: see the README)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _checker() -> object:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import onnx_zoo

    return onnx_zoo


@pytest.mark.skipif(not os.environ.get("CONVCOST_ZOO_ONNX"), reason="CONVCOST_ZOO_ONNX unset")
def test_every_export_in_the_directory_matches_torchvision() -> None:
    pytest.importorskip("onnx")
    directory = Path(os.environ["CONVCOST_ZOO_ONNX"])
    assert _checker().check(directory) == []  # type: ignore[attr-defined]


def test_fresh_exports_match_torchvision(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("torchvision")
    checker = _checker()
    names = ["squeezenet1_1", "shufflenet_v2_x1_0", "mobilenet_v3_small"]
    checker.export(tmp_path, names)  # type: ignore[attr-defined]
    assert checker.check(tmp_path, names) == []  # type: ignore[attr-defined]
