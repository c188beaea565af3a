"""Cost of the default table against JSON, and its growth with the number of layers.

1. ResNet-50 (examples/resnet50.convcost): ``convcost analyze`` as a table and as JSON, whole
   process, alternating, median of the repeats; prints table / JSON (target <= 1.5).
2. A generated chain of 10,000 and of 100,000 layers as a table (and as JSON, alternating):
   prints the times and the table's growth beyond start-up over the 10x size ratio (1.0 is
   linear).

All figures come from this one run. Output goes to a pipe, so tables are 100 columns wide.
Runs ``python -m convcost`` with this Python (set PYTHONPATH to test a working copy).

Usage: python benchmarks/table_speed.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESNET = ROOT / "examples" / "resnet50.convcost"


def run(arguments: list[str]) -> float:
    """Wall seconds of one ``convcost`` process (output to a pipe that is read and dropped)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "convcost", *arguments], stdout=subprocess.PIPE,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def chain(layers: int) -> str:
    """A chain of ``layers`` layers (conv and relu alternating)."""
    return "64x64x8 -> " + " -> ".join(["3x3(8)", "relu"] * (layers // 2)) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    # Bytecode written once, as an install has it (PYTHONDONTWRITEBYTECODE would otherwise
    # make every run compile the modules it imports, and tables import more than JSON).
    spec = importlib.util.find_spec("convcost")
    if spec is not None and spec.submodule_search_locations:
        compileall.compile_dir(list(spec.submodule_search_locations)[0], quiet=1)
    table: list[float] = []
    json_: list[float] = []
    run(["analyze", str(RESNET)])  # warm the file cache and bytecode
    for _ in range(args.repeats):
        table.append(run(["analyze", str(RESNET)]))
        json_.append(run(["analyze", str(RESNET), "--format", "json"]))
    ratio = statistics.median(table) / statistics.median(json_)
    print(f"resnet50: table {statistics.median(table):.3f} s, json "
          f"{statistics.median(json_):.3f} s (medians of {args.repeats}, alternating): "
          f"table / json = {ratio:.2f}")

    startup = statistics.median(run(["analyze", "8 -> relu"]) for _ in range(3))
    with tempfile.TemporaryDirectory() as folder:
        times = {}
        for layers in (10_000, 100_000):
            path = Path(folder) / f"chain{layers}.convcost"
            path.write_text(chain(layers))
            table_runs, json_runs = [], []
            for _ in range(3):
                table_runs.append(run(["analyze", str(path)]))
                json_runs.append(run(["analyze", str(path), "--format", "json"]))
            times[layers] = statistics.median(table_runs)
            print(f"{layers:,}-layer chain: table {times[layers]:.2f} s, json "
                  f"{statistics.median(json_runs):.2f} s (table / json "
                  f"{times[layers] / statistics.median(json_runs):.2f})")
    growth = (times[100_000] - startup) / (times[10_000] - startup) / 10
    print(f"start-up {startup:.2f} s; growth 10k -> 100k beyond start-up, over 10x: "
          f"{growth:.2f} (1.00 = linear)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
