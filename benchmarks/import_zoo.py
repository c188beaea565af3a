"""Round-trip the torchvision zoo exports through ``convcost import`` and time the writer.

For every ``*.onnx`` in a directory (default ``/tmp/zoo_onnx``: the 19 zoo models exported by
torchvision with batch norm kept, and ``_folded``), lower it with ``read_onnx``, write it as a
spec with ``program_to_spec``, analyse the spec again and compare MACs, params, buffers, other
ops, output shape and peak memory with the ONNX program's. Prints one line per model and the
time spent writing specs relative to reading the ONNX files (both in this one run).

Usage: python benchmarks/import_zoo.py [DIRECTORY] [--show NAME]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", nargs="?", default="/tmp/zoo_onnx", type=Path)
    parser.add_argument("--show", metavar="NAME", help="print the spec written for NAME")
    args = parser.parse_args()

    from convcost.analysis import analyze_text
    from convcost.cost.report import build_report
    from convcost.importers.onnx import read_onnx
    from convcost.importers.onnx_wire import read_model_bytes
    from convcost.importers.spec_writer import program_to_spec
    from convcost.inputs import MAX_ONNX_BYTES

    files = sorted(args.directory.glob("*.onnx"))
    if not files:
        print(f"no .onnx files in {args.directory}", file=sys.stderr)
        return 2
    failures = 0
    read_seconds = write_seconds = 0.0
    for path in files:
        start = time.perf_counter()
        data = read_model_bytes(str(path), MAX_ONNX_BYTES)  # the graph, without the weights
        program = read_onnx(data, path.stem, size=None, batch=1, source=str(path))
        middle = time.perf_counter()
        try:
            text = program_to_spec(program)
        except Exception as error:  # noqa: BLE001 - report and go on with the other models
            print(f"FAIL  {path.stem}: {error}")
            failures += 1
            continue
        end = time.perf_counter()
        read_seconds += middle - start
        write_seconds += end - middle
        if args.show == path.stem:
            print(text)
        before = build_report(program, source="", spec="")
        again = analyze_text(text, source_name="<written>")
        if again.errors:
            print(f"FAIL  {path.stem}: {again.errors[0]}")
            failures += 1
            continue
        after = again.models[0].report
        keys = ("macs", "params", "buffers", "other_ops")
        same = all(getattr(before.totals, key) == getattr(after.totals, key) for key in keys) \
            and before.output == after.output
        peak = "same peak" if before.totals.peak_activation_bytes == \
            after.totals.peak_activation_bytes else (
            f"peak {before.totals.peak_activation_bytes:,} -> "
            f"{after.totals.peak_activation_bytes:,}")
        lines = len(text.splitlines())
        print(f"{'ok   ' if same else 'DIFF '} {path.stem:32} {before.totals.macs:>15,} MACs "
              f"{before.totals.params:>12,} params  {lines:3} lines  {peak}")
        failures += not same
    print(f"{len(files) - failures}/{len(files)} round-trip to identical totals; writing specs "
          f"took {write_seconds / max(read_seconds, 1e-9):.2f}x the time of reading the ONNX "
          f"files ({write_seconds:.3f} s vs {read_seconds:.3f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
