"""How fast is `convcost analyze`? Prints ratios measured in one run (machines here are noisy).

1. Wall time of ``convcost analyze examples/resnet50.convcost --format json`` divided by the
   wall time of ``python -c "import click"`` (target <= 1.5): start-up dominates, so convcost
   must import little more than click does. The two commands are run interleaved and the
   medians compared.
2. The same for all 19 model-zoo files in one call, ``convcost analyze examples/zoo --format
   json`` (target <= 2).
3. Models analysed per second in-process for the ResNet-50 spec (parse, shapes, costs, peak
   memory; target >= 200/s).

Usage: python benchmarks/analyze_speed.py [--runs N]
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "examples" / "resnet50.convcost"
ZOO = ROOT / "examples" / "zoo"


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def startup_ratio(runs: int, spec: Path = SPEC) -> tuple[float, float, float]:
    """Median wall seconds of convcost and of importing click, and their ratio."""
    # A pip install compiles bytecode; an editable checkout under PYTHONDONTWRITEBYTECODE
    # would otherwise recompile every module on every run and measure the wrong thing.
    compileall.compile_dir(str(ROOT / "convcost"), quiet=1)
    sibling = Path(sys.executable).with_name("convcost")  # the install this Python runs
    executable = str(sibling) if sibling.exists() else shutil.which("convcost") or "convcost"
    convcost = [executable, "analyze", str(spec), "--format", "json"]
    click = [sys.executable, "-c", "import click"]
    for command in (convcost, click):  # warm the file cache
        _wall(command)
    ours, theirs = [], []
    for _ in range(runs):
        ours.append(_wall(convcost))
        theirs.append(_wall(click))
    mine, base = statistics.median(ours), statistics.median(theirs)
    return mine, base, mine / base


def models_per_second(seconds: float = 2.0) -> tuple[float, int]:
    """In-process models per second for the ResNet-50 spec, and its layer count."""
    from convcost.analysis import analyze_source
    from convcost.errors import Source

    source = Source(str(SPEC), SPEC.read_text(encoding="utf-8"))
    layers = len(analyze_source(source).reports[0].layers)
    count = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        analyze_source(source)
        count += 1
    return count / (time.perf_counter() - start), layers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="interleaved runs of each command")
    args = parser.parse_args()
    os.chdir(ROOT)
    mine, base, ratio = startup_ratio(args.runs)
    zoo, zoo_base, zoo_ratio = startup_ratio(args.runs, ZOO)
    rate, layers = models_per_second()
    print(f"convcost analyze resnet50 --format json: {mine * 1000:.1f} ms (median of {args.runs})")
    print(f'python -c "import click":               {base * 1000:.1f} ms (median of {args.runs})')
    print(f"start-up ratio: {ratio:.2f}  (target <= 1.5: {'PASS' if ratio <= 1.5 else 'FAIL'})")
    print(f"convcost analyze examples/zoo --format json: {zoo * 1000:.1f} ms vs "
          f"{zoo_base * 1000:.1f} ms: ratio {zoo_ratio:.2f}  "
          f"(target <= 2.0: {'PASS' if zoo_ratio <= 2.0 else 'FAIL'})")
    print(f"in-process: {rate:.0f} ResNet-50 models/s ({layers} layers each)  "
          f"(target >= 200/s: {'PASS' if rate >= 200 else 'FAIL'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
