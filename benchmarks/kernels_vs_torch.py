"""convcost's NumPy conv kernels against ``torch.nn.functional.conv2d``, layer by layer.

For every layer, convcost's kernel (as ``--bench`` prepares it: float32, batch 1, NHWC) and
torch's conv2d in NCHW and in channels-last are timed *alternately* in one run (a slow phase
of the shared machine then hits all three alike), at 1 and at 2 threads (threadpoolctl for
NumPy's BLAS, ``torch.set_num_threads`` for torch). Each timing is the median of
``--repeats`` samples; a sample times enough back-to-back calls to last ``--sample-ms``.

Layers, by family:

- ``seed``: the seed pair at 56x56x256 (``256 -> 4x4(256)`` and ``256 -> 1x1(64) ->
  4x4(256)``, examples/bottleneck.convcost);
- ``resnet50``: ResNet-50's distinct convolutions (examples/resnet50.convcost) but the stem;
- ``depthwise``: MobileNet v2's distinct depthwise layers (examples/zoo/mobilenet_v2.convcost);
- ``stem``: ResNet-50's 7x7 stride-2 stem on 224x224x3 and MobileNet v2's 3x3 stride-2 one;
- ``5x5``: a 5x5 convolution on 28x28x16.

Prints per layer convcost's time, torch's NCHW and channels-last times and ``ratio`` =
convcost / torch's best layout (below 1: convcost is faster), then the median ratio per
family. Outputs are checked against torch's (to 1e-3 relative) before timing. Asymmetric
('same') padding is applied to torch's input outside the timed region (torch's conv2d pads
symmetrically only), which favours torch slightly.

``--kernels numpy`` runs convcost's NumPy kernels, ``--kernels jit`` the numba ones where
there are (``direct-jit``, ``blocked-jit``; needs ``pip install convcost[jit]``); the default is what
``--bench`` would use (jit when numba is installed and ``CONVCOST_JIT`` is not ``0``). The
header says which family ran, and the algorithm column names each layer's kernel.

Usage: python benchmarks/kernels_vs_torch.py [--threads 1 2] [--repeats 15]
       [--family depthwise --family stem] [--sample-ms 5] [--kernels numpy|jit]
Needs torch (exits with a message otherwise). Report the load (printed at start and end:
``os.getloadavg``) with the figures: the dev VM's 2 cores are shared.
"""

from __future__ import annotations

import os

# Both libraries spin their idle worker threads; interleaved in one process, each one's
# spinning starves the other at 2 threads (a 3 ms stem took 108 ms). Set before the imports.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from convcost.analysis import Options, analyze_inputs, analyze_text  # noqa: E402
from convcost.bench.kernels import jit, make_input, prepare_step  # noqa: E402
from convcost.inputs import collect  # noqa: E402
from convcost.model.program import Step  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ("seed", "resnet50", "depthwise", "stem", "5x5")
SEED = ("56x56x256 -> 4x4(256)", "56x56x256 -> 1x1(64) -> 4x4(256)")
FIVE = "28x28x16 -> 5x5(32)"


class Layer(NamedTuple):
    family: str
    name: str
    step: Step


def _steps(text: str | None = None, path: Path | None = None) -> list[Step]:
    if text is not None:
        models = analyze_text(text).models
    else:
        inputs, _ = collect([str(path)])
        models = analyze_inputs(inputs, Options()).models
    return [step for step in models[0].program.steps if step.kind == "conv"]


def _key(step: Step) -> tuple[Any, ...]:
    return (step.input, step.output, step.kernel_hw, step.stride_hw, step.dilation_hw,
            step.padding, step.groups, step.bias)


def _name(step: Step) -> str:
    h, w, c = step.input
    kh, kw = step.kernel_hw
    sh, _ = step.stride_hw
    g = "dw " if step.groups > 1 and step.groups == c else ""
    return f"{h}x{w}x{c} {g}{kh}x{kw}({step.output.c}) s{sh}"


def layers(families: tuple[str, ...]) -> list[Layer]:
    """The benchmarked layers, deduplicated by geometry, in family order."""
    out: list[Layer] = []
    seen: set[tuple[Any, ...]] = set()

    def add(family: str, steps: list[Step]) -> None:
        for step in steps:
            if family in families and _key(step) not in seen:
                seen.add(_key(step))
                out.append(Layer(family, _name(step), step))

    resnet = _steps(path=ROOT / "examples" / "resnet50.convcost")
    mobilenet = _steps(path=ROOT / "examples" / "zoo" / "mobilenet_v2.convcost")
    for text in SEED:
        add("seed", _steps(text))
    add("stem", [resnet[0], mobilenet[0]])
    add("resnet50", resnet[1:])
    add("depthwise", [s for s in mobilenet if s.groups > 1 and s.groups == s.input.c])
    add("5x5", _steps(FIVE))
    return out


class Timed(NamedTuple):
    ours: float
    nchw: float
    channels_last: float
    algorithm: str

    @property
    def best(self) -> float:
        return min(self.nchw, self.channels_last)

    @property
    def ratio(self) -> float:
        return self.ours / self.best


def _calls_for(fn: Callable[[], object], sample_s: float) -> int:
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    return max(1, round(sample_s / once))


def _sample(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def time_layer(layer: Layer, torch: Any, repeats: int, sample_s: float) -> Timed:
    """Median seconds per call of convcost's kernel and torch's two layouts, alternating."""
    functional = torch.nn.functional
    step = layer.step
    rng = np.random.default_rng(0)
    kernel = prepare_step(step, "float32", rng)
    x = make_input(step.input, 1, np.dtype(np.float32), rng)
    params = kernel.params
    weight = torch.from_numpy(np.ascontiguousarray(params["weight"].transpose(3, 2, 0, 1)))
    bias = torch.from_numpy(params["bias"]) if "bias" in params else None
    top, bottom, left, right = step.padding
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    if (top, left) == (bottom, right):
        pad: tuple[int, int] = (top, left)
    else:
        xt = functional.pad(xt, (left, right, top, bottom))
        pad = (0, 0)
    x_cl = xt.contiguous(memory_format=torch.channels_last)
    w_cl = weight.contiguous(memory_format=torch.channels_last)
    conv = functional.conv2d
    sh, sw = step.stride_hw
    dh, dw = step.dilation_hw
    args = {"stride": (sh, sw), "padding": pad, "dilation": (dh, dw), "groups": step.groups}

    def ours() -> object:
        return kernel(x)

    def nchw() -> object:
        return conv(xt, weight, bias, **args)

    def channels_last() -> object:
        return conv(x_cl, w_cl, bias, **args)

    with torch.no_grad():
        expected = nchw().permute(0, 2, 3, 1).numpy()
        got = ours()
        scale = float(np.abs(expected).max()) or 1.0
        if not np.allclose(got, expected, rtol=1e-3, atol=1e-3 * scale):
            raise SystemExit(f"{layer.name}: convcost and torch disagree "
                             f"(max |diff| {np.abs(got - expected).max():.3g})")
        fns = (ours, nchw, channels_last)
        calls = [_calls_for(fn, sample_s) for fn in fns]
        samples: list[list[float]] = [[], [], []]
        for _ in range(repeats):
            for i, fn in enumerate(fns):
                samples[i].append(_sample(fn, calls[i]))
    ours_s, nchw_s, cl_s = (statistics.median(s) for s in samples)
    return Timed(ours_s, nchw_s, cl_s, kernel.algorithm)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sample-ms", type=float, default=5.0)
    parser.add_argument("--family", action="append", choices=FAMILIES,
                        help="only these families (repeatable; default all)")
    parser.add_argument("--kernels", choices=("numpy", "jit"),
                        help="convcost's kernel family (default: what --bench would use)")
    args = parser.parse_args()
    if args.kernels == "jit" and not jit.numba_installed():
        print("--kernels jit needs numba (pip install convcost[jit]); nothing measured",
              file=sys.stderr)
        return 2
    if args.kernels is not None:
        os.environ[jit.ENV] = "1" if args.kernels == "jit" else "0"
    family = "jit (numba)" if jit.enabled() else "numpy"
    try:
        import torch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        print("kernels_vs_torch.py needs torch (pip install torch); nothing measured",
              file=sys.stderr)
        return 2
    families = tuple(args.family or FAMILIES)
    chosen = layers(families)
    print(f"convcost kernels: {family}; torch {torch.__version__}, numpy {np.__version__}; "
          f"load average at start "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}; {len(chosen)} layers, "
          f"median of {args.repeats} alternating samples of >= {args.sample_ms:g} ms")
    started = time.perf_counter()
    for threads in args.threads:
        torch.set_num_threads(threads)
        with threadpool_limits(threads):
            print(f"\n=== {threads} thread(s) ===")
            print(f"{'family':9} {'layer':28} {'algorithm':19} {'ours ms':>8} {'nchw ms':>8} "
                  f"{'cl ms':>8} {'ratio':>6}")
            ratios: dict[str, list[float]] = {}
            for layer in chosen:
                t = time_layer(layer, torch, args.repeats, args.sample_ms / 1e3)
                ratios.setdefault(layer.family, []).append(t.ratio)
                print(f"{layer.family:9} {layer.name:28} {t.algorithm:19} "
                      f"{t.ours * 1e3:8.3f} {t.nchw * 1e3:8.3f} "
                      f"{t.channels_last * 1e3:8.3f} {t.ratio:6.2f}", flush=True)
            for family, values in ratios.items():
                print(f"median convcost / torch-best [{family}]: "
                      f"{statistics.median(values):.2f} (min {min(values):.2f}, "
                      f"max {max(values):.2f}, {len(values)} layers)")
    print(f"\nload average at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}; "
          f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
