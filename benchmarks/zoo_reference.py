"""Reference MACs, params and buffers of the model zoo, measured with torchvision.

Writes ``tests/data/zoo_reference.json``: for each of the 19 torchvision classification
models that ``examples/zoo/<name>.convcost`` reproduces, the MACs, params and batch-norm
buffers of ``torchvision.models.<name>(weights=None)`` in eval mode, at batch 1 and its
native input (224x224x3; 299x299x3 for inception_v3).

This script needs PyTorch and torchvision, which are NOT dependencies of convcost (the
analysis never imports a deep-learning framework). Run it in a throwaway environment:

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch torchvision
    /tmp/tv/bin/python benchmarks/zoo_reference.py            # rewrites the JSON
    /tmp/tv/bin/python benchmarks/zoo_reference.py --check    # compares, writes nothing

How it counts (the same conventions as convcost):

- macs: ``torch.utils.flop_counter.FlopCounterMode`` total // 2. FlopCounterMode counts
  convolutions and matrix products (addmm/mm/bmm) as 2 FLOPs per multiply-accumulate of
  their weights and nothing else (no bias, norm, activation, pooling, mean or elementwise
  work), which is exactly convcost's MACs.
- params: ``sum(p.numel() for p in model.parameters())``.
- buffers: the numel of every BatchNorm's running_mean and running_var
  (num_batches_tracked is left out; convcost counts 2*C buffers per bn).

GoogLeNet and Inception v3 are built with aux_logits=False and init_weights=False
(no auxiliary heads, and no slow scipy-based initialisation).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "data" / "zoo_reference.json"

# name -> (extra constructor kwargs, input side)
MODELS: dict[str, tuple[dict[str, object], int]] = {
    "resnet18": ({}, 224),
    "resnet50": ({}, 224),
    "resnext50_32x4d": ({}, 224),
    "wide_resnet50_2": ({}, 224),
    "vgg11_bn": ({}, 224),
    "googlenet": ({"aux_logits": False, "init_weights": False}, 224),
    "inception_v3": ({"aux_logits": False, "init_weights": False}, 299),
    "densenet121": ({}, 224),
    "mobilenet_v2": ({}, 224),
    "mobilenet_v3_large": ({}, 224),
    "mobilenet_v3_small": ({}, 224),
    "efficientnet_b0": ({}, 224),
    "shufflenet_v2_x1_0": ({}, 224),
    "mnasnet1_0": ({}, 224),
    "squeezenet1_1": ({}, 224),
    "regnet_y_400mf": ({}, 224),
    "regnet_x_400mf": ({}, 224),
    "convnext_tiny": ({}, 224),
    "alexnet": ({}, 224),
}


def build(name: str) -> torch.nn.Module:
    kwargs, _ = MODELS[name]
    model = getattr(torchvision.models, name)(weights=None, **kwargs)
    return model.eval()


def measure(name: str) -> dict[str, object]:
    model = build(name)
    side = MODELS[name][1]
    x = torch.randn(1, 3, side, side)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(x)
    flops = counter.get_total_flops()
    if flops % 2:
        raise SystemExit(f"{name}: odd FLOP count {flops}")
    if tuple(out.shape) != (1, 1000):
        raise SystemExit(f"{name}: output shape {tuple(out.shape)}, expected (1, 1000)")
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for n, b in model.named_buffers()
                  if n.endswith("running_mean") or n.endswith("running_var"))
    return {"macs": flops // 2, "params": params, "buffers": buffers,
            "input": [side, side, 3], "classes": int(out.shape[1])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed JSON instead of rewriting it")
    parser.add_argument("models", nargs="*", help="subset of model names (default: all)")
    args = parser.parse_args()
    torch.manual_seed(0)
    names = args.models or list(MODELS)
    document = {"torch": torch.__version__, "torchvision": torchvision.__version__,
                "models": {name: measure(name) for name in names}}
    for name, figures in document["models"].items():
        print(f"{name:20s} macs {figures['macs']:>15,}  params {figures['params']:>12,}  "
              f"buffers {figures['buffers']:>8,}", file=sys.stderr)
    if args.check:
        committed = json.loads(OUTPUT.read_text(encoding="utf-8"))["models"]
        bad = [name for name, figures in document["models"].items() if committed.get(name) != figures]
        for name in bad:
            print(f"differs: {name}: {committed.get(name)} vs {document['models'][name]}",
                  file=sys.stderr)
        return 1 if bad else 0
    if args.models:
        raise SystemExit("give no model names to rewrite the JSON (it must list them all)")
    OUTPUT.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
