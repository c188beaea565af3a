"""NumPy against PyTorch on the same chains: whole-chain time of ``--bench --backend numpy``
over ``--backend torch`` (CPU), measured in one run, alternating, median of the repeats.

A ratio above 1 means the NumPy kernels are slower than PyTorch on this machine. Both
backends run the same protocol (convcost.bench.timing.measure) at the same thread count.

Usage: python benchmarks/backend_speed.py [--runs N] [--threads N] [SPEC ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from convcost.analysis import analyze_arguments
from convcost.bench.run import BenchSettings, bench_models

DEFAULT_SPECS = [
    "stage: 56x56x256 -> res[1x1(64) -> 3x3(64) -> 1x1(256)]*3",
    "dw: 56x56x96 -> (1x1(576) -> relu6 -> 3x3(dw) -> relu6 -> 1x1(96))*2",
    "head: 7x7x512 -> gap -> fc(1000)",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", nargs="*", default=DEFAULT_SPECS)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    try:
        from convcost.bench.backends.torch import bench_models as torch_bench_models
    except ImportError:
        sys.exit("this benchmark needs torch: pip install torch")
    models = analyze_arguments(args.specs).models
    settings = BenchSettings(threads=args.threads, budget_s=0.5, gemm_peak_gflops=0.0)
    times: dict[str, dict[str, list[float]]] = {}
    for _ in range(args.runs):  # alternate the backends: drift hits both alike
        for backend in ("numpy", "torch"):
            run = (bench_models(models, settings) if backend == "numpy"
                   else torch_bench_models(models, settings, "torch"))
            for model in run.models:
                assert model.report.bench is not None
                times.setdefault(model.report.name, {}).setdefault(backend, []).append(
                    model.report.bench.median_s)
    print(f"{'model':<8} {'numpy ms':>9} {'torch ms':>9} {'numpy/torch':>12}  "
          f"(median of {args.runs}, {args.threads} thread(s))")
    for name, by in times.items():
        numpy_s, torch_s = statistics.median(by["numpy"]), statistics.median(by["torch"])
        print(f"{name:<8} {numpy_s * 1e3:9.2f} {torch_s * 1e3:9.2f} {numpy_s / torch_s:12.2f}")


if __name__ == "__main__":
    main()
