"""Batch throughput of the CLI: models analysed per second over a folder of spec files.

Generates folders of 100, 1,000 and 10,000 files of 10 seed-sized models each (chains like the
1x1-bottleneck pair, with varied channel counts: 1,000 to 100,000 models), then times
``convcost analyze DIR --format json`` end to end at each size, and the start-up alone (one
tiny chain). Targets: >= 10,000 models/s at 100,000 models, and time growing linearly with
the input: the marginal cost of a model from 10,000 to 100,000 models over its marginal cost
from 1,000 to 10,000, within 0.9-1.1 (1.00 = linear; above 1 the cost per model grows with the
input, as it did when the cyclic garbage collector rescanned every report). Marginal costs
cancel every fixed cost, not only start-up: forking the workers, first-use caches. It is
given for wall time and for CPU time (user + system of convcost and its workers), which a
slow phase of the shared machine disturbs less. The older
figure, time beyond start-up at the largest size over that at the smallest divided by the
ratio of their sizes, is printed too; those fixed costs pull it below 1. All figures come from
this one run (best of 5 rounds).

Usage: python benchmarks/batch_speed.py [--files 10000] [--format json] [--jobs N] [--repeats 5]
"""

from __future__ import annotations

import argparse
import compileall
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS_PER_FILE = 10


def write_specs(folder: Path, files: int) -> None:
    """``files`` spec files of ``MODELS_PER_FILE`` seed-sized models each."""
    for number in range(files):
        lines = [f"# generated file {number}"]
        for model in range(MODELS_PER_FILE):
            channels = 64 + 16 * ((number + model) % 12)
            reduced = channels // 4
            if model % 2:
                lines.append(f"m{model}: {channels} -> 1x1({reduced}) -> 4x4({channels})")
            else:
                lines.append(f"m{model}: 56x56x{channels} -> 1x1({reduced}) -> bn -> relu -> "
                             f"3x3({reduced}) -> 1x1({channels})")
        (folder / f"spec{number:05d}.convcost").write_text("\n".join(lines) + "\n")


def time_cli(arguments: list[str], fmt: str, jobs: int | None) -> float:
    """Wall seconds of one ``convcost analyze`` run."""
    return run_cli(arguments, fmt, jobs)[0]


def run_cli(arguments: list[str], fmt: str, jobs: int | None) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, its worker processes included) of one
    ``convcost analyze`` run."""
    sibling = Path(sys.executable).with_name("convcost")  # the install this Python runs
    executable = str(sibling) if sibling.exists() else shutil.which("convcost") or "convcost"
    extra = ["--jobs", str(jobs)] if jobs is not None else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([executable, "analyze", *arguments, "--format", fmt, *extra],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="largest folder")
    parser.add_argument("--format", default="json", choices=["json", "csv", "markdown", "table"])
    parser.add_argument("--repeats", type=int, default=5, help="rounds over the sizes")
    parser.add_argument("--jobs", type=int, default=None, help="--jobs for convcost (default: "
                        "its own choice)")
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "convcost"), quiet=1)  # as a pip install would
    startup = min(time_cli(["8x8x3 -> 1x1(4)"], args.format, args.jobs) for _ in range(5))
    with tempfile.TemporaryDirectory() as temp:
        sizes = sorted({max(1, args.files // 100), max(1, args.files // 10), args.files})
        folders = []
        for files in sizes:
            folder = Path(temp) / f"n{files}"
            folder.mkdir()
            write_specs(folder, files)
            time_cli([str(folder)], args.format, args.jobs)  # warm the file cache
            folders.append(folder)
        # Rounds over all sizes in turn: a slow phase of the shared machine then hits every
        # size alike rather than one of them.
        runs: list[list[float]] = [[] for _ in sizes]
        cpus: list[list[float]] = [[] for _ in sizes]
        for _ in range(args.repeats):
            for times, cpu, folder in zip(runs, cpus, folders):
                wall, used = run_cli([str(folder)], args.format, args.jobs)
                times.append(wall)
                cpu.append(used)
        results = [(files, min(times)) for files, times in zip(sizes, runs)]
        cpu_results = [(files, min(used)) for files, used in zip(sizes, cpus)]
    print(f"convcost analyze DIR --format {args.format}"
          f"{f' --jobs {args.jobs}' if args.jobs is not None else ''} (best of "
          f"{args.repeats} rounds over the sizes in turn; start-up alone "
          f"{startup * 1000:.0f} ms)")
    for files, seconds in results:
        models = files * MODELS_PER_FILE
        print(f"  {files:6d} files, {models:7d} models: {seconds:7.3f} s  "
              f"{models / seconds:9.0f} models/s  {seconds / models * 1e6:6.1f} us/model")
    (small_files, small_s), (big_files, big_s) = results[0], results[-1]
    scale = big_files / small_files
    growth = ((big_s - startup) / (small_s - startup)) / scale
    rate = big_files * MODELS_PER_FILE / big_s
    print(f"time grows {big_s / small_s:.1f}x for {scale:.0f}x the input; beyond start-up "
          f"{growth:.2f} of linear growth (fixed costs beyond start-up pull this below 1)")
    if len(results) == 3:
        for label, figures in (("wall", results), ("CPU", cpu_results)):
            (f0, s0), (f1, s1), (f2, s2) = figures
            marginal = ((s2 - s1) / (f2 - f1)) / ((s1 - s0) / (f1 - f0))
            print(f"marginal {label} time per model, {f1 * MODELS_PER_FILE:,} -> "
                  f"{f2 * MODELS_PER_FILE:,} over {f0 * MODELS_PER_FILE:,} -> "
                  f"{f1 * MODELS_PER_FILE:,}: {marginal:.2f} (1.00 = linear; target 0.9-1.1: "
                  f"{'PASS' if 0.9 <= marginal <= 1.1 else 'FAIL'})")
    print(f"throughput at {big_files * MODELS_PER_FILE:,} models: {rate:.0f} models/s  "
          f"(target >= 10000: {'PASS' if rate >= 10_000 else 'FAIL'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
