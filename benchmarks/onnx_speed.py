"""How fast is `convcost analyze model.onnx`? Prints a ratio measured in one run.

Whole-process wall time of ``convcost analyze densenet121.onnx --format json`` (a ~430-node
torchvision export, 32 MB) divided by that of ``python -c "import onnx"`` (target <= 1.5).
The two commands run as alternating pairs and the medians are compared; machines here are
noisy, so only the ratio within one run means anything.

The model is PATH, or ``densenet121.onnx`` exported into a temporary directory when torch
and torchvision are importable.

Usage: python benchmarks/onnx_speed.py [PATH] [--pairs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.5


def _export(directory: Path) -> Path:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from onnx_zoo import export

    export(directory, ["densenet121"])
    return directory / "densenet121.onnx"


def _seconds(command: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env, cwd=ROOT)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, help="an ONNX model (default: export "
                        "torchvision's densenet121)")
    parser.add_argument("--pairs", type=int, default=9, help="alternating pairs (>= 7)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        path = args.path or _export(Path(scratch))
        analyze = [sys.executable, "-m", "convcost", "analyze", str(path), "--format", "json"]
        baseline = [sys.executable, "-c", "import onnx"]
        _seconds(analyze), _seconds(baseline)  # warm the file cache and the bytecode
        ours, theirs = [], []
        for _ in range(max(args.pairs, 7)):
            ours.append(_seconds(analyze))
            theirs.append(_seconds(baseline))
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"convcost analyze {path.name} --format json: median {statistics.median(ours):.3f} s")
    print(f"python -c 'import onnx':                  median {statistics.median(theirs):.3f} s")
    print(f"ratio {ratio:.2f} (target <= {TARGET}) over {len(ours)} alternating pairs")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
