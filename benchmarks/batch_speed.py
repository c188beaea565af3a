"""Batch throughput of the CLI: models analysed per second over a folder of spec files.

Generates N files of 10 seed-sized models each (chains like the 1x1-bottleneck pair, with
varied channel counts), then times ``convcost analyze DIR --format json`` end to end (start-up
included) at 1/4, 1/2 and all of the files, to show time growing linearly with input size.
Target: >= 5,000 models/s at 1,000 files. All figures come from this one run.

Usage: python benchmarks/batch_speed.py [--files 1000] [--format json]
"""

from __future__ import annotations

import argparse
import compileall
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


def time_cli(folder: Path, fmt: str) -> float:
    """Wall seconds of one ``convcost analyze`` run over ``folder``."""
    executable = shutil.which("convcost") or str(Path(sys.executable).with_name("convcost"))
    start = time.perf_counter()
    subprocess.run([executable, "analyze", str(folder), "--format", fmt],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--format", default="json", choices=["json", "csv", "markdown", "table"])
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "convcost"), quiet=1)  # as a pip install would
    with tempfile.TemporaryDirectory() as temp:
        sizes = sorted({max(1, args.files // 4), max(1, args.files // 2), args.files})
        results = []
        for files in sizes:
            folder = Path(temp) / f"n{files}"
            folder.mkdir()
            write_specs(folder, files)
            time_cli(folder, args.format)  # warm the file cache
            seconds = min(time_cli(folder, args.format) for _ in range(3))
            results.append((files, seconds))
    print(f"convcost analyze DIR --format {args.format} (best of 3 runs each, start-up included)")
    for files, seconds in results:
        models = files * MODELS_PER_FILE
        print(f"  {files:6d} files, {models:7d} models: {seconds:7.3f} s  "
              f"{models / seconds:9.0f} models/s  {seconds / models * 1e6:6.1f} us/model")
    (small_files, small_s), (big_files, big_s) = results[0], results[-1]
    growth = (big_s / small_s) / (big_files / small_files)
    rate = big_files * MODELS_PER_FILE / big_s
    print(f"time grows {big_s / small_s:.2f}x for {big_files / small_files:.0f}x the input: "
          f"{growth:.2f} of linear growth (1.00 = linear; a little below 1 is the fixed start-up)")
    print(f"throughput at {big_files} files: {rate:.0f} models/s  "
          f"(target >= 5000: {'PASS' if rate >= 5000 else 'FAIL'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
