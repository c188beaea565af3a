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

Every timed block is bracketed by a short GEMM probe and watched for contention (process CPU
time against wall time, ``/proc/stat``), as ``--bench`` does: an efficiency is printed only
when the probes around it agreed, against the peak they measured; one above 1.0 is printed
with its flag (``beats-gemm``: steady probes and a stable timing), never bare. Layers and the
run are flagged ``probe-unreliable``, ``timing-unstable`` or ``contended``.

Usage: python benchmarks/bench_efficiency.py [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from convcost.analysis import Analyzed, Options, analyze_inputs, analyze_text
from convcost.bench.contention import assess, read_proc_stat, watch
from convcost.bench.machine import (
    CALIBRATION_POLICY,
    blas_threads,
    gemm_peak_gflops,
    machine_info,
)
from convcost.bench.results import classify_efficiency
from convcost.bench.run import BenchSettings, Monitor, bench_model, make_monitor
from convcost.bench.timing import TimingPolicy, measure
from convcost.inputs import collect

ROOT = Path(__file__).resolve().parent.parent
BIG = 50_000_000
CHAIN_POLICY = TimingPolicy(warmup=2, min_block_s=0.2, repeats=7)
LAYER_POLICY = TimingPolicy(warmup=2, min_block_s=0.05, repeats=7)
SEED = ("56x56x256 -> 4x4(256)", "56x56x256 -> 1x1(64) -> 4x4(256)")


def _bench(model: Analyzed, peak: float, monitor: Monitor) -> Analyzed:
    """``model`` measured as ``--bench`` does, with the longer chain policy below."""
    settings = BenchSettings(gemm_peak_gflops=peak)
    return bench_model(model, settings, peak_gflops=peak, max_memory=None,
                       policy=CHAIN_POLICY, monitor=monitor)


def _flagged(efficiency: float | None, flag: str, contended: bool) -> str:
    """An efficiency as printed: withheld ones as '-', flags beside the number."""
    text = f"{efficiency:.2f}" if efficiency is not None else "-"
    marks = [flag] if flag else []
    if contended:
        marks.append("contended")
    return text + (f" [{', '.join(marks)}]" if marks else "")


def _conv_rows(name: str, model: Analyzed, monitor: Monitor) -> list[dict[str, Any]]:
    """Every conv step: isolated kernel time (protocol, probes around every block) and
    in-place time (from the bench)."""
    import numpy as np

    from convcost.bench.kernels import make_input, prepare_step

    rng = np.random.default_rng(0)
    rows = []
    assert model.report.bench is not None
    chain_contended = model.report.bench.contended
    for step, costed in zip(model.program.steps, model.report.layers):
        if step.kind != "conv" or costed.bench is None:
            continue
        kernel = prepare_step(step, "float32", rng)
        x = make_input(step.input, 1, np.dtype(np.float32), rng)
        stop = watch(time.perf_counter, time.process_time, read_proc_stat)
        timed = measure(partial(kernel, x), LAYER_POLICY, cpu_clock=time.process_time,
                        probe=monitor.probe)
        contention = assess(timed.block_s, timed.cpu_s, monitor.threads, monitor.cpus, stop())
        alone = timed.median_s
        gflops = costed.flops / alone / 1e9
        local_peak = statistics.median(timed.probes) * monitor.peak_per_probe
        efficiency, flag = classify_efficiency(gflops / local_peak, timed.probes_agree,
                                               timed.stable)
        assert costed.bench is not None
        rows.append({"model": name, "path": step.path, "text": step.text,
                     "input": step.input, "macs": costed.macs, "seconds": alone,
                     "gflops": gflops, "efficiency": efficiency, "flag": flag,
                     "contended": contention.contended,
                     "in_place": costed.bench.efficiency,
                     "in_place_flag": costed.bench.efficiency_flag,
                     "in_place_contended": chain_contended,
                     "algorithm": kernel.algorithm})
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
        monitor = make_monitor("float32", peak, info.threads)
        assert monitor.probe is not None
        print(f"machine: {info.blas} ({info.blas_arch}), {info.threads} BLAS threads, "
              f"{info.cpu_count} CPUs")
        print(f"float32 matrix-multiply peak: {peak:.1f} GFLOP/s (GEMM probe: "
              f"{monitor.reference_gflops:.1f} GFLOP/s; efficiencies use the probes "
              f"around each timed block x {monitor.peak_per_probe:.2f})")

        rows: list[dict[str, Any]] = []
        seeds = []
        for text in SEED:
            seed = _bench(analyze_text(text).models[0], peak, monitor)
            assert seed.report.bench is not None
            seeds.append(seed.report.bench)
            rows += _conv_rows(text, seed, monitor)

        inputs, _ = collect([str(ROOT / "examples" / "resnet50.convcost")])
        resnet = _bench(analyze_inputs(inputs, Options()).models[0], peak, monitor)
        assert resnet.report.bench is not None
        rows += _conv_rows("resnet50", resnet, monitor)
        torch_times = _torch_reference(rows, info.threads)

    print()
    header = f"{'model':34} {'layer':8} {'conv':18} {'MACs':>7} {'ms':>7} {'GFLOP/s':>8} " \
             f"{'of peak':>16} {'in place':>16}  algorithm"
    print(header + (f"  {'torch ms':>8}" if torch_times else ""))
    for row in rows:
        line = (f"{row['model'][:34]:34} {row['path']:8} {row['text'][:18]:18} "
                f"{row['macs'] / 1e6:6.0f}M {row['seconds'] * 1e3:7.2f} {row['gflops']:8.1f} "
                f"{_flagged(row['efficiency'], row['flag'], row['contended']):>16} "
                f"{_flagged(row['in_place'], row['in_place_flag'], row['in_place_contended']):>16}  "
                f"{row['algorithm']:13}")
        reference = torch_times.get((row["model"], row["path"]))
        print(line + (f"  {reference * 1e3:8.2f}" if reference else ""))
    big = [row for row in rows if row["macs"] >= BIG]
    trusted = [row for row in big if row["efficiency"] is not None and not row["flag"]
               and not row["contended"]]
    in_place = [row["in_place"] for row in big if row["in_place"] is not None
                and not row["in_place_flag"] and not row["in_place_contended"]]
    print()
    withheld = len(big) - len(trusted)
    if trusted:
        median = statistics.median(row["efficiency"] for row in trusted)
        print(f"median efficiency over {len(trusted)} conv layers of >= 50M MACs: {median:.2f} "
              f"of peak (target >= 0.80: {'PASS' if median >= 0.80 else 'FAIL'})"
              + (f"; timed in place in the chain: {statistics.median(in_place):.2f}"
                 if in_place else ""))
    else:
        print("median efficiency: none of the conv layers of >= 50M MACs was measured "
              "reliably (every one flagged)")
    if withheld:
        print(f"  {withheld} of {len(big)} such layers left out: flagged probe-unreliable, "
              f"timing-unstable, beats-gemm or contended")
    contended = [row for row in rows if row["contended"]]
    runs = [*seeds, resnet.report.bench]
    print(f"contention: {len(contended)} of {len(rows)} layer timings and "
          f"{sum(bench.contended for bench in runs)} of {len(runs)} chain runs contended"
          + ("; RUN CONTENDED" if contended or any(bench.contended for bench in runs) else
             "; not contended"))
    notes = list(dict.fromkeys(note for bench in runs for note in bench.warnings
                               if note.startswith(("contended", "at least one core"))))
    for note in notes[:4]:
        print(f"  {note}")
    if len(notes) > 4:
        print(f"  ... and {len(notes) - 4} more such notes")
    predicted = 1_048_576 / 278_528
    measured = seeds[0].median_s / seeds[1].median_s
    off = abs(measured / predicted - 1)
    reliable = all(bench.reliable for bench in seeds)
    print(f"seed pair at 56x56x256: predicted {predicted:.2f}x, measured {measured:.2f}x "
          f"({seeds[0].median_s * 1e3:.1f} ms vs {seeds[1].median_s * 1e3:.1f} ms), "
          f"{off * 100:.1f}% off (target within 10%: {'PASS' if off <= 0.10 else 'FAIL'})"
          + ("" if reliable else " [UNRELIABLE: a timing was unstable, unsteady or "
                                 "contended]"))
    if not torch_times:
        print("PyTorch is not importable here: no torch reference column")
    return 0


if __name__ == "__main__":
    sys.exit(main())
