"""Check ONNX exports of the model zoo against torchvision's figures.

For every ``<name>.onnx`` and ``<name>_folded.onnx`` in DIR whose name is a zoo model
(``tests/data/zoo_reference.json``), ``convcost analyze`` must give torchvision's MACs
exactly; with batch norm kept (``<name>.onnx``) also its params and buffers; with batch norm
folded into the convolutions (``<name>_folded.onnx``) params + buffers must equal the number
of values in the file's initializers (the folded weights and biases, plus the running stats
of any batch norm that could not be folded), counted here independently from the graph. Each
bn-kept export analysed at ``--size 160x128`` must also give the MACs, other ops, params and
buffers of its spec (``examples/zoo/<name>.convcost``) at that size (not AlexNet and VGG, whose
exports fit only 224x224).

``--export`` first writes the exports (needs torch and torchvision; batch 1, opset 17, the
TorchScript exporter; every float tensor set to distinct random values so the exporter
deduplicates no initializer). Exit status 1 if any file disagrees.

Usage: python benchmarks/onnx_zoo.py DIR [--export] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REFERENCE = ROOT / "tests" / "data" / "zoo_reference.json"
#: The other input size at which each bn-kept export must equal its zoo spec.
RESIZED = (160, 128)
#: Exports that fit only their own size: their adaptive average pool is exported as a fixed
#: 1x1 AveragePool, so at another size the classifier's input no longer fits (a clear error).
FIXED_SIZE = frozenset({"alexnet", "vgg11_bn"})


def export(directory: Path, names: list[str]) -> None:
    """Write ``<name>.onnx`` (bn kept) and ``<name>_folded.onnx`` for each zoo model."""
    import warnings

    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from zoo_reference import MODELS, build

    warnings.filterwarnings("ignore")
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        side = MODELS[name][1]
        for suffix, mode in (("", torch.onnx.TrainingMode.PRESERVE),
                             ("_folded", torch.onnx.TrainingMode.EVAL)):
            model = build(name)
            generator = torch.Generator().manual_seed(0)
            with torch.no_grad():
                for key, tensor in model.state_dict().items():
                    if tensor.is_floating_point():
                        tensor.copy_(torch.rand(tensor.shape, generator=generator) * 0.1
                                     + (0.5 if key.endswith("running_var") else -0.05))
            torch.onnx.export(model, (torch.randn(1, 3, side, side),),
                              str(directory / f"{name}{suffix}.onnx"), opset_version=17,
                              training=mode, do_constant_folding=True, dynamo=False,
                              input_names=["input"], output_names=["logits"])


def initializer_values(path: Path) -> int:
    """Number of values in a file's initializers (from their dims; nothing is loaded)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    total = 0
    for tensor in model.graph.initializer:
        count = 1
        for dim in tensor.dims:
            count *= dim
        total += count
    return total


def _resized(path: Path, name: str) -> list[str]:
    """Differences from the zoo spec at :data:`RESIZED` (MACs, other ops, params, buffers:
    peak memory and traffic depend on the order and grouping of layers, which differ)."""
    from convcost.analysis import Options, analyze_arguments

    ours = analyze_arguments([str(path)], Options(size=RESIZED))
    spec = analyze_arguments([str(ROOT / "examples" / "zoo" / f"{name}.convcost")],
                             Options(size=RESIZED))
    if ours.errors or spec.errors:
        return [f"at {RESIZED[0]}x{RESIZED[1]}: {(ours.errors or spec.errors)[0]}"]
    keys = ("macs", "other_ops", "params", "buffers")
    first, second = ours.reports[0].totals, spec.reports[0].totals
    return [f"at {RESIZED[0]}x{RESIZED[1]} {key} {getattr(first, key):,} != spec's "
            f"{getattr(second, key):,}" for key in keys
            if getattr(first, key) != getattr(second, key)]


def check(directory: Path, names: list[str] | None = None) -> list[str]:
    """Check every zoo export in ``directory``; returns the failures (printed as it goes)."""
    from convcost.analysis import Options, analyze_arguments

    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))["models"]
    failures: list[str] = []
    files = sorted(directory.glob("*.onnx"))
    checked = 0
    for path in files:
        folded = path.stem.endswith("_folded")
        name = path.stem.removesuffix("_folded")
        if name not in reference or (names and name not in names):
            continue
        checked += 1
        expected = reference[name]
        start = time.perf_counter()
        analysis = analyze_arguments([str(path)], Options())
        seconds = time.perf_counter() - start
        if analysis.errors:
            failures.append(f"{path.name}: {analysis.errors[0]}")
            print(f"FAIL {path.name}: {analysis.errors[0]}")
            continue
        totals = analysis.reports[0].totals
        problems = []
        if totals.macs != expected["macs"]:
            problems.append(f"MACs {totals.macs:,} != {expected['macs']:,}")
        if folded:
            stored = initializer_values(path)
            if totals.params + totals.buffers != stored:
                problems.append(f"params+buffers {totals.params + totals.buffers:,} != "
                                f"{stored:,} initializer values")
        else:
            for key in ("params", "buffers"):
                if getattr(totals, key) != expected[key]:
                    problems.append(f"{key} {getattr(totals, key):,} != {expected[key]:,}")
            if name not in FIXED_SIZE:  # the same architecture at another size
                problems += _resized(path, name)
        status = "FAIL" if problems else "ok  "
        print(f"{status} {path.name:34s} MACs {totals.macs:>15,}  params {totals.params:>12,}"
              f"  buffers {totals.buffers:>7,}  {seconds * 1000:6.0f} ms"
              + (f"  {'; '.join(problems)}" if problems else ""))
        if problems:
            failures.append(f"{path.name}: {'; '.join(problems)}")
    print(f"{checked} files checked, {len(failures)} failed")
    if not checked:
        failures.append(f"no zoo exports found in {directory}")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--export", action="store_true",
                        help="export the models first (needs torch and torchvision)")
    parser.add_argument("--models", nargs="*", default=None, help="only these zoo models")
    args = parser.parse_args()
    if args.export:
        names = args.models or sorted(
            json.loads(REFERENCE.read_text(encoding="utf-8"))["models"])
        export(args.directory, names)
    return 1 if check(args.directory, args.models) else 0


if __name__ == "__main__":
    sys.exit(main())
