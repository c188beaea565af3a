"""How well does the roofline predict measured layer times, against MAC-proportional guessing?

Measures, in one run on this machine (NumPy kernels, ``--bench``'s protocol):

1. this machine's profile (``convcost calibrate``: GEMM peak and copy bandwidth), the
   ``local`` device;
2. every layer of the seed pair, ResNet-50, MobileNet v2, the Inception example and the zoo
   models whose forward pass is predicted to take under 5 s, timed in place;
3. two predictions of each layer's time:

   - **MAC-proportional**: one rate per model, fitted to its measured chain time
     (``t_layer = MACs_layer * t_model / MACs_model``), the usual "FLOPs are time" guess;
   - **roofline**: ``max(ops / peak, bytes / bandwidth)`` on the local profile, nothing fitted;

4. per prediction, the median |error| over all layers and over layers of >= 10M MACs, and
   the share of layers of >= 10M MACs predicted within +-25%. Error = predicted / measured - 1.

Usage: python benchmarks/roofline_accuracy.py [--budget SECONDS] [--threads N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from convcost.analysis import Analyzed, Options, analyze_arguments
from convcost.bench.machine import blas_threads, calibrate
from convcost.bench.run import BenchSettings, bench_models
from convcost.roofline.apply import with_roofline
from convcost.roofline.local import profile_from_calibration

ROOT = Path(__file__).resolve().parent.parent
HEAVY = 10_000_000
WITHIN = 0.25
MAX_FORWARD_S = 5.0
SEED = ("56x56x256 -> 4x4(256)", "56x56x256 -> 1x1(64) -> 4x4(256)")
EXAMPLES = ("resnet50", "inception")


def _models(quick: bool) -> list[Analyzed]:
    """The seed pair, ResNet-50, the Inception example, MobileNet v2 and the zoo."""
    specs = [*SEED, *(str(ROOT / "examples" / f"{name}.convcost") for name in EXAMPLES)]
    zoo = sorted((ROOT / "examples" / "zoo").glob("*.convcost"))
    if quick:
        zoo = [path for path in zoo if path.stem in ("mobilenet_v2", "resnet18")]
    analysis = analyze_arguments([*specs, *map(str, zoo)], Options())
    if analysis.errors:
        raise SystemExit("\n".join(map(str, analysis.errors)))
    return analysis.models


def _errors(predicted: list[float], measured: list[float]) -> list[float]:
    return [p / m - 1 for p, m in zip(predicted, measured)]


def _summary(errors: list[float], heavy: list[bool]) -> tuple[float, float, float]:
    """Median |error| over all layers and over heavy ones, and the heavy share within 25%."""
    big = [abs(e) for e, is_heavy in zip(errors, heavy) if is_heavy]
    return (statistics.median(abs(e) for e in errors),
            statistics.median(big) if big else float("nan"),
            sum(e <= WITHIN for e in big) / len(big) if big else float("nan"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=2.0,
                        help="seconds of chain timing per model (as --bench-budget)")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="two zoo models only")
    args = parser.parse_args()
    with blas_threads(args.threads):
        print(f"calibrating this machine ({args.threads} BLAS thread(s))...", file=sys.stderr)
        device = profile_from_calibration(calibrate(("float32",)))
    peak, bandwidth = device.peak_for("float32"), device.bandwidth
    print(f"local profile: GEMM peak {peak / 1e9:.1f} GFLOP/s, copy bandwidth "
          f"{bandwidth / 1e9:.1f} GB/s, ridge {peak / bandwidth:.1f} FLOP/byte")
    candidates = []
    for model in _models(args.quick):
        predicted = with_roofline(model.report, [device]).roofline[0].time_s
        # The roofline is a lower bound; NumPy reaches a fraction of it. Skip models whose
        # forward pass would take over 5 s even at a quarter of the roof.
        if predicted * 4 <= MAX_FORWARD_S:
            candidates.append(model)
        else:
            print(f"skipped {model.report.name}: predicted {predicted:.2f} s per pass",
                  file=sys.stderr)
    settings = BenchSettings(threads=args.threads, budget_s=args.budget,
                             gemm_peak_gflops=peak / 1e9)

    def progress(number: int, count: int, name: str, what: str) -> None:
        print(f"\r[{number}/{count}] {name}: {what}".ljust(78)[:78], end="", file=sys.stderr)

    run = bench_models(candidates, settings, progress)
    print(file=sys.stderr)
    for error in run.errors:
        print(f"not measured: {error.message}", file=sys.stderr)
    rows = []
    mac_errors: list[float] = []
    roof_errors: list[float] = []
    heavy: list[bool] = []
    for model in run.models:
        report = with_roofline(model.report, [device])
        if report.bench is None:
            continue
        measured = [layer.bench.median_s for layer in report.layers if layer.bench is not None]
        if len(measured) != len(report.layers) or report.totals.macs == 0:
            continue
        rate = report.bench.median_s / report.totals.macs
        by_macs = _errors([layer.macs * rate for layer in report.layers], measured)
        by_roof = _errors([layer.roofline[0].time_s for layer in report.layers], measured)
        is_heavy = [layer.macs >= HEAVY for layer in report.layers]
        mac_errors += by_macs
        roof_errors += by_roof
        heavy += is_heavy
        rows.append((report.name, len(report.layers), sum(is_heavy), _summary(by_macs, is_heavy),
                     _summary(by_roof, is_heavy), report.bench.median_s,
                     report.roofline[0].time_s))
    print(f"\n{'model':<22}{'layers':>7}{'>=10M':>6}   MAC-proportional       roofline"
          f"          measured  roofline")
    print(f"{'':<22}{'':>7}{'':>6}   med|e| heavy <25%    med|e| heavy <25%    chain     chain")
    for name, count, big, (m_all, m_big, m_in), (r_all, r_big, r_in), seconds, roof in rows:
        print(f"{name[:21]:<22}{count:>7}{big:>6}   {m_all:6.0%} {m_big:5.0%} {m_in:4.0%}"
              f"    {r_all:6.0%} {r_big:5.0%} {r_in:4.0%}   {seconds * 1e3:7.1f}ms "
              f"{roof * 1e3:7.1f}ms")
    m_all, m_big, m_in = _summary(mac_errors, heavy)
    r_all, r_big, r_in = _summary(roof_errors, heavy)
    print(f"\nall {len(mac_errors)} layers ({sum(heavy)} of >= 10M MACs) of {len(rows)} models:")
    print(f"  MAC-proportional: median |error| {m_all:.0%} (>= 10M MACs: {m_big:.0%}); "
          f"within +-25%: {m_in:.0%} of layers >= 10M MACs")
    print(f"  roofline (local): median |error| {r_all:.0%} (>= 10M MACs: {r_big:.0%}); "
          f"within +-25%: {r_in:.0%} of layers >= 10M MACs")
    wins = r_all < m_all and r_in > m_in
    print(f"  roofline beats MAC-proportional on both figures: {'yes' if wins else 'no'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
