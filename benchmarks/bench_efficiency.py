"""How close do convcost's NumPy kernels get to this machine's matrix-multiply peak?

Prints, measured in one run:

1. the float32 matrix-multiply peak (GFLOP/s), the roof every efficiency is relative to;
2. for the seed pair at 56x56x256 and for every convolution of ResNet-50 at 224x224, each
   conv layer's achieved GFLOP/s (2 * MACs / time) as a fraction of that peak, and the median
   over layers of >= 50M MACs (target >= 0.80). Two timings per layer: the layer's kernel on
   its own with the full timing protocol (warm-up, calibrated loops, 7 repeats, median) --
   the kernel's efficiency, which the target is about -- and the layer timed in place during
   forward passes of the whole chain, as ``--bench`` reports it (neighbouring layers evict
   caches and BLAS threads idle in between, so it is lower);
3. the seed pair's measured speedup against the predicted 64/17 = 3.76x (target: within 10%);
4. if PyTorch is importable, ``torch.nn.functional.conv2d`` on the same shapes and thread
   count, as a reference.

Usage: python benchmarks/bench_efficiency.py [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from convcost.analysis import Analyzed, Options, analyze_inputs, analyze_text
from convcost.bench.machine import (
    CALIBRATION_POLICY,
    blas_threads,
    gemm_peak_gflops,
    machine_info,
)
from convcost.bench.run import BenchSettings, bench_model
from convcost.bench.timing import TimingPolicy, measure
from convcost.inputs import collect

ROOT = Path(__file__).resolve().parent.parent
BIG = 50_000_000
CHAIN_POLICY = TimingPolicy(warmup=2, min_block_s=0.2, repeats=7)
LAYER_POLICY = TimingPolicy(warmup=2, min_block_s=0.05, repeats=7)
SEED = ("56x56x256 -> 4x4(256)", "56x56x256 -> 1x1(64) -> 4x4(256)")


def _bench(model: Analyzed, peak: float) -> Analyzed:
    """``model`` measured as ``--bench`` does, with the longer chain policy below."""
    settings = BenchSettings(gemm_peak_gflops=peak)
    return bench_model(model, settings, peak_gflops=peak, max_memory=None,
                       policy=CHAIN_POLICY)


def _conv_rows(name: str, model: Analyzed, peak: float) -> list[dict[str, Any]]:
    """Every conv step: isolated kernel time (protocol) and in-place time (from the bench)."""
    import numpy as np

    from convcost.bench.kernels import make_input, prepare_step

    rng = np.random.default_rng(0)
    rows = []
    for step, costed in zip(model.program.steps, model.report.layers):
        if step.kind != "conv" or costed.bench is None:
            continue
        kernel = prepare_step(step, "float32", rng)
        x = make_input(step.input, 1, np.dtype(np.float32), rng)
        alone = measure(partial(kernel, x), LAYER_POLICY).median_s
        gflops = costed.flops / alone / 1e9
        rows.append({"model": name, "path": step.path, "text": step.text,
                     "input": step.input, "macs": costed.macs, "seconds": alone,
                     "gflops": gflops, "efficiency": gflops / peak,
                     "in_place": costed.bench.gflops / peak, "algorithm": kernel.algorithm})
    return rows


def _torch_reference(rows: list[dict[str, Any]], threads: int) -> dict[tuple[str, str], float]:
    """Seconds of torch.nn.functional.conv2d per layer (NCHW, float32), if torch is here."""
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return {}
    torch.set_num_threads(threads)
    times = {}
    import re
    for row in rows:
        text, shape = row["text"], row["input"]
        match = re.match(r"(\d+)x(\d+)\((\d+)(?:, s=(\d+))?", text)
        if not match:
            continue
        kh, kw, cout = int(match.group(1)), int(match.group(2)), int(match.group(3))
        stride = int(match.group(4) or 1)
        x = torch.randn(1, shape.c, shape.h, shape.w)
        w = torch.randn(cout, shape.c, kh, kw)
        pad = (kh // 2, kw // 2) if kh % 2 else "same"
        if stride > 1 and pad == "same":
            continue

        def call(x: Any = x, w: Any = w, stride: int = stride, pad: Any = pad) -> Any:
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch notes that even kernels copy for 'same'
                return torch.nn.functional.conv2d(x, w, stride=stride, padding=pad)

        times[(row["model"], row["path"])] = measure(call, CALIBRATION_POLICY).median_s
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None,
                        help="BLAS threads (default: as configured)")
    args = parser.parse_args()
    with blas_threads(args.threads):
        info = machine_info()
        peak = gemm_peak_gflops("float32", CALIBRATION_POLICY)
        print(f"machine: {info.blas} ({info.blas_arch}), {info.threads} BLAS threads, "
              f"{info.cpu_count} CPUs")
        print(f"float32 matrix-multiply peak: {peak:.1f} GFLOP/s")

        rows: list[dict[str, Any]] = []
        seed_times = []
        for text in SEED:
            seed = _bench(analyze_text(text).models[0], peak)
            assert seed.report.bench is not None
            seed_times.append(seed.report.bench.median_s)
            rows += _conv_rows(text, seed, peak)

        inputs, _ = collect([str(ROOT / "examples" / "resnet50.convcost")])
        resnet = analyze_inputs(inputs, Options()).models[0]
        rows += _conv_rows("resnet50", _bench(resnet, peak), peak)
        torch_times = _torch_reference(rows, info.threads)

    print()
    header = f"{'model':34} {'layer':8} {'conv':18} {'MACs':>7} {'ms':>7} {'GFLOP/s':>8} " \
             f"{'of peak':>7} {'in place':>8}  algorithm"
    print(header + (f"  {'torch ms':>8}" if torch_times else ""))
    for row in rows:
        line = (f"{row['model'][:34]:34} {row['path']:8} {row['text'][:18]:18} "
                f"{row['macs'] / 1e6:6.0f}M {row['seconds'] * 1e3:7.2f} {row['gflops']:8.1f} "
                f"{row['efficiency']:7.2f} {row['in_place']:8.2f}  {row['algorithm']:13}")
        reference = torch_times.get((row["model"], row["path"]))
        print(line + (f"  {reference * 1e3:8.2f}" if reference else ""))
    big = [row for row in rows if row["macs"] >= BIG]
    median = statistics.median(row["efficiency"] for row in big)
    in_place = statistics.median(row["in_place"] for row in big)
    print()
    print(f"median efficiency over {len(big)} conv layers of >= 50M MACs: {median:.2f} of peak "
          f"(target >= 0.80: {'PASS' if median >= 0.80 else 'FAIL'}); timed in place in the "
          f"chain: {in_place:.2f}")
    predicted = 1_048_576 / 278_528
    measured = seed_times[0] / seed_times[1]
    off = abs(measured / predicted - 1)
    print(f"seed pair at 56x56x256: predicted {predicted:.2f}x, measured {measured:.2f}x "
          f"({seed_times[0] * 1e3:.1f} ms vs {seed_times[1] * 1e3:.1f} ms), {off * 100:.1f}% "
          f"off (target within 10%: {'PASS' if off <= 0.10 else 'FAIL'})")
    if not torch_times:
        print("PyTorch is not importable here: no torch reference column")
    return 0


if __name__ == "__main__":
    sys.exit(main())
