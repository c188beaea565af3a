"""Bounded work on hostile input: prints ratios and times measured in one run.

1. Layers written across lines against the same layers on one line (8,000 ``3x3(8, s=1)``
   layers, each broken after its comma): the ratio of parse times (target <= 3; it was ~12
   while ``text_between`` searched the token list for each layer).
2. A statement of MAX_LAYERS + 1 layers is refused while it is parsed: the time to the
   error for a 2 MB file of 400,000 ``relu`` layers, against parsing one of 100,000.
3. A file of 20,000 bad lines: the parse stops after MAX_ERRORS errors.

Usage: python benchmarks/hostile_parse.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import time

from convcost.errors import Source
from convcost.lang import parse_source

try:
    from convcost.lang.vocab import MAX_LAYERS
except ImportError:  # before the limit moved to the vocabulary
    from convcost.model.resolve import MAX_LAYERS


def _median_seconds(text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        parse_source(Source("bench", text))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs

    layers = 8000
    one_line = "m: 8 -> " + " -> ".join(f"3x3(8, s={i % 7 + 1})" for i in range(layers)) + "\n"
    across = "m: 8 -> " + " -> ".join(f"3x3(8,\n s={i % 7 + 1})" for i in range(layers)) + "\n"
    # Alternate the two so machine noise hits both alike.
    flat, broken = [], []
    for _ in range(runs):
        flat.append(_median_seconds(one_line, 1))
        broken.append(_median_seconds(across, 1))
    print(f"{layers} layers across lines / on one line: "
          f"{statistics.median(broken) / statistics.median(flat):.2f}x "
          f"({statistics.median(broken) * 1e3:.0f} ms vs {statistics.median(flat) * 1e3:.0f} ms)")

    limit_ok = "m: 8" + " -> relu" * MAX_LAYERS + "\n"
    over = "m: 8" + " -> relu" * (4 * MAX_LAYERS) + "\n"
    ok_s, over_s = _median_seconds(limit_ok, runs), _median_seconds(over, runs)
    errors = parse_source(Source("bench", over)).errors
    first = errors[0].message[:40] if errors else "no error while parsing"
    print(f"{4 * MAX_LAYERS:,} layers ({len(over) / 1e6:.1f} MB): {over_s * 1e3:.0f} ms to "
          f"'{first}...', against {ok_s * 1e3:.0f} ms to parse {MAX_LAYERS:,}")

    bad = "m: 8 -> bogus\n" * 20000
    bad_s = _median_seconds(bad, runs)
    count = len(parse_source(Source("bench", bad)).errors)
    print(f"20,000 bad lines: {count} errors reported in {bad_s * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
