"""Memory: parameter bytes per dtype, output and traffic bytes, and peak activation memory,
worked by hand and compared with an independent liveness simulator written here."""

from __future__ import annotations

from pathlib import Path

import pytest

from convcost.analysis import Analysis, Options, analyze_source, analyze_text
from convcost.cost.report import ModelReport
from convcost.errors import Source
from convcost.model.program import Program

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DTYPES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8}
#: Layers that pass their input on unchanged, without a new tensor (README: they alias it).
ALIASES = frozenset({"id", "dropout"})


def _analysis(spec: str, batch: int = 1, dtype: str = "float32",
              size: tuple[int, int] | None = None) -> Analysis:
    analysis = analyze_text(spec, Options(size=size, batch=batch, dtype=dtype))
    assert not analysis.errors, [str(error) for error in analysis.errors]
    assert len(analysis.reports) == 1
    return analysis


def _report(spec: str, batch: int = 1, dtype: str = "float32") -> ModelReport:
    return _analysis(spec, batch, dtype).reports[0]


def _peak_elements(spec: str) -> int:
    """convcost's peak, per sample, in elements (float32 bytes / 4)."""
    peak = _report(spec).totals.peak_activation_bytes
    assert peak % 4 == 0
    return peak // 4


# -- parameter, output and traffic bytes ------------------------------------------------------


@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_param_bytes_per_dtype(dtype: str) -> None:
    spec = "8x8x3 -> 3x3(4) -> bn -> relu -> fc(5)"
    # params: conv 4*3*9 + 4 = 112, bn 8, fc 256*5 + 5 = 1285
    params = 112 + 8 + 1285
    report = _report(spec, dtype=dtype)
    assert report.totals.params == params
    assert report.totals.param_bytes == params * DTYPES[dtype]
    assert [layer.param_bytes for layer in report.layers] == \
        [112 * DTYPES[dtype], 8 * DTYPES[dtype], 0, 1285 * DTYPES[dtype]]
    assert report.dtype == dtype


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("batch", [1, 3])
def test_output_and_traffic_bytes(dtype: str, batch: int) -> None:
    size = DTYPES[dtype]
    spec = ("8x8x3 -> 3x3(4) -> bn -> relu -> dropout -> [1x1(2) | id] -> "
            "res[3x3(6) | 1x1(6, nobias)] -> maxpool2x2 -> gap -> fc(5) -> softmax")
    report = _report(spec, batch=batch, dtype=dtype)
    act = batch * size
    # (kind, input elements read, output elements, params, buffers) worked by hand
    expected = [
        ("conv", 192, 256, 4 * 3 * 9 + 4, 0),
        ("bn", 256, 256, 8, 8),
        ("relu", 256, 256, 0, 0),
        ("dropout", None, 256, 0, 0),          # aliases its input: no traffic
        ("conv", 256, 128, 4 * 2 + 2, 0),      # branch 1
        ("id", None, 256, 0, 0),               # branch 2 aliases
        ("concat", 128 + 256, 384, 0, 0),      # reads both branch outputs
        ("conv", 384, 384, 6 * 6 * 9 + 6, 0),  # body
        ("conv", 384, 384, 6 * 6, 0),          # projection shortcut
        ("add", 384 + 384, 384, 0, 0),         # reads both operands
        ("maxpool", 384, 96, 0, 0),
        ("gap", 96, 6, 0, 0),
        ("fc", 6, 5, 6 * 5 + 5, 0),
        ("softmax", 5, 5, 0, 0),
    ]
    assert [layer.kind for layer in report.layers] == [row[0] for row in expected]
    for layer, (kind, read, out, params, buffers) in zip(report.layers, expected):
        assert layer.output.elements == out, kind
        assert layer.output_bytes == out * act, kind
        assert (layer.params, layer.buffers) == (params, buffers), kind
        if read is None:
            assert layer.traffic_bytes == 0, kind
        else:
            assert layer.traffic_bytes == (read + out) * act + (params + buffers) * size, kind
    assert report.totals.traffic_bytes == sum(layer.traffic_bytes for layer in report.layers)


def test_traffic_counts_bn_buffers_and_intensity() -> None:
    report = _report("4x4x8 -> bn")
    layer = report.layers[0]
    assert layer.traffic_bytes == (128 + 128) * 4 + (16 + 16) * 4
    assert layer.intensity == 0.0
    report = _report("4x4x8 -> 1x1(2, nobias)")
    layer = report.layers[0]
    assert layer.traffic_bytes == (128 + 32) * 4 + 16 * 4
    assert layer.flops == 2 * 16 * 16
    assert layer.intensity == 512 / 704


# -- peak activation memory, worked by hand ---------------------------------------------------


def test_peak_plain_chain() -> None:
    # 8x8x4 -> 3x3(16) -> 3x3(32, s=2) -> 1x1(8); per sample:
    #   input X = 256; conv1 writes 1024 while reading X: live 256 + 1024 = 1280
    #   conv2 reads 1024, writes 4*4*32 = 512:            live 1024 + 512 = 1536  <- peak
    #   conv3 reads 512, writes 128:                      live 512 + 128 = 640
    assert _peak_elements("8x8x4 -> 3x3(16) -> 3x3(32, s=2) -> 1x1(8)") == 1536
    # only the input: nothing else is live
    assert _peak_elements("8x8x4 -> id") == 256
    assert _peak_elements("8x8x4 -> relu") == 512


def test_peak_branch_block() -> None:
    # 4x4x8 -> [1x1(4) | 3x3(16) -> 1x1(2) | maxpool3x3(s=1)]; X = 128
    #   b1 1x1(4) writes 64 while X is live:                X + 64             = 192
    #   b2 3x3(16) writes 256; X held for b3, b1 out held:  X + 64 + 256       = 448
    #   b2 1x1(2) writes 32, still reading the 256:         X + 64 + 256 + 32  = 480 <- peak
    #   b3 maxpool writes 128, the last read of X:          X + 64 + 32 + 128  = 352
    #   concat writes 16*14 = 224 with all branch outputs:  64 + 32 + 128 + 224 = 448
    assert _peak_elements("4x4x8 -> [1x1(4) | 3x3(16) -> 1x1(2) | maxpool3x3(s=1)]") == 480


def test_peak_branch_input_held_until_last_branch_reads_it() -> None:
    # 4x4x8 -> [1x1(2) | 1x1(2) | 3x3(64)]; X = 128
    #   b1: X + 32 = 160; b2: X + 32 + 32 = 192
    #   b3 writes 4*4*64 = 1024 while X (its input) is live: X + 32 + 32 + 1024 = 1216 <- peak
    #   concat writes 4*4*68 = 1088 with 32 + 32 + 1024 live:  2176 <- larger
    assert _peak_elements("4x4x8 -> [1x1(2) | 1x1(2) | 3x3(64)]") == 32 + 32 + 1024 + 1088
    # the big branch first: X still held for the later branches
    #   b1 3x3(64): X + 1024 = 1152; b2: X + 1024 + 32; b3: X + 1024 + 32 + 32 = 1216
    #   concat: 1024 + 32 + 32 + 1088 = 2176
    assert _peak_elements("4x4x8 -> [3x3(64) | 1x1(2) | 1x1(2)]") == 2176


def test_peak_identity_branch() -> None:
    # 4x4x8 -> [id | 1x1(8)]; X = 128, the id branch's output is X itself
    #   b2 writes 128: X + 128 = 256; concat writes 256 while X and b2 are live: 512
    assert _peak_elements("4x4x8 -> [id | 1x1(8)]") == 512


def test_peak_residual_identity() -> None:
    # 4x4x8 -> res[3x3(16) -> 1x1(8)]; X = 128, held for the identity shortcut
    #   3x3(16) writes 256:                    X + 256       = 384
    #   1x1(8) writes 128, reading the 256:    X + 256 + 128 = 512 <- peak
    #   add writes 128 while X and body live:  X + 128 + 128 = 384
    assert _peak_elements("4x4x8 -> res[3x3(16) -> 1x1(8)]") == 512
    # res[relu]: relu writes 128 (X + 128), add writes 128 (X + 128 + 128 = 384)
    assert _peak_elements("4x4x8 -> res[relu]") == 384


def test_peak_residual_projection() -> None:
    # 4x4x8 -> res[3x3(16, s=2) -> 1x1(32) | 1x1(32, s=2)]; X = 128
    #   body 3x3 writes 2*2*16 = 64:              X + 64        = 192
    #   body 1x1 writes 128:                      X + 64 + 128  = 320
    #   shortcut writes 128 (body output held):   X + 128 + 128 = 384 <- peak
    #   add writes 128 (X released already):      128 + 128 + 128 = 384
    assert _peak_elements("4x4x8 -> res[3x3(16, s=2) -> 1x1(32) | 1x1(32, s=2)]") == 384
    # a big shortcut: 8x8x4 -> res[1x1(4) | 3x3(64) -> 1x1(4)]; X = 256
    #   body writes 256: X + 256 = 512; shortcut 3x3 writes 4096 while body and X are live:
    #   256 + 256 + 4096 = 4608 <- peak; shortcut 1x1 writes 256: 256 + 4096 + 256 = 4608
    assert _peak_elements("8x8x4 -> res[1x1(4) | 3x3(64) -> 1x1(4)]") == 4608


def test_peak_id_and_dropout_alias() -> None:
    # 4x4x8 -> 3x3(16) -> id -> dropout -> 1x1(8): id and dropout create nothing
    #   conv writes 256: 128 + 256 = 384; 1x1 writes 128 reading the same 256: 384
    assert _peak_elements("4x4x8 -> 3x3(16) -> id -> dropout -> 1x1(8)") == 384
    assert _peak_elements("4x4x8 -> 3x3(16) -> dropout(0.5) -> 1x1(8)") == 384
    # relu instead writes a new 256-element tensor: 256 + 256 = 512
    assert _peak_elements("4x4x8 -> 3x3(16) -> relu -> 1x1(8)") == 512


@pytest.mark.parametrize("batch", [1, 2, 5])
@pytest.mark.parametrize("dtype", sorted(DTYPES))
def test_peak_scales_with_batch_and_dtype(batch: int, dtype: str) -> None:
    spec = "4x4x8 -> [1x1(4) | 3x3(16) -> 1x1(2) | maxpool3x3(s=1)]"
    assert _report(spec, batch=batch, dtype=dtype).totals.peak_activation_bytes == \
        480 * batch * DTYPES[dtype]


# -- an independent simulator -----------------------------------------------------------------


class _Program:
    """The program's steps as (tensors read, tensor written), aliases folded into the tensor
    they name (an independent reading of the step list, not the production liveness)."""

    def __init__(self, program: Program) -> None:
        self.sizes: dict[int, int] = {0: program.input.elements}  # tensor 0 is the input
        self.steps: list[tuple[tuple[int, ...], int]] = []
        name = {0: 0}
        for step in program.steps:
            reads = tuple(name[value] for value in step.inputs)
            if step.kind in ALIASES:
                name[step.out] = reads[0]  # the same tensor under another name
                continue
            for value, shape in zip(step.inputs, step.operands):
                assert shape.elements == self.sizes[name[value]]
            name[step.out] = step.out
            self.sizes[step.out] = step.output.elements
            self.steps.append((reads, step.out))
        self.output = name[program.result]


def simulate_peak(network: Program) -> int:
    """Peak by liveness intervals: a tensor is live from the step that writes it (the input from
    step 0) to the last step that reads it (the final output to the end); at each step sum the
    sizes of the live tensors."""
    program = _Program(network)
    end = len(program.steps)
    born = {0: 0}
    last = {0: 0}
    for time, (reads, written) in enumerate(program.steps, start=1):
        born[written] = time
        last[written] = time
        for tensor in reads:
            last[tensor] = time
    last[program.output] = end
    peak = 0
    for time in range(end + 1):
        live = sum(program.sizes[tensor] for tensor in born
                   if born[tensor] <= time <= last[tensor])
        peak = max(peak, live)
    return peak


SIMULATED = [
    "8x8x4 -> 3x3(16) -> 3x3(32, s=2) -> 1x1(8)",
    "28x28x192 -> [1x1(64) -> relu | 1x1(96) -> relu -> 3x3(128) -> relu | 1x1(16) -> relu "
    "-> 5x5(32) -> relu | maxpool3x3(s=1) -> 1x1(32) -> relu]",
    "16x16x8 -> [id | [1x1(4) | 3x3(4) -> relu] -> 1x1(8) | maxpool2x2 -> up2]",
    "16x16x8 -> res[[1x1(4) | 3x3(4) -> [id | 1x1(2)]] -> 1x1(8)] -> relu",
    "16x16x8 -> res[3x3(16, s=2) | [1x1(8, s=2) | maxpool2x2]]",
    "8x8x4 -> res[res[3x3(4) -> relu] -> 3x3(8) | 1x1(8)] -> relu",
    "8x8x4 -> id -> res[id] -> [id | dropout] -> dropout -> 1x1(2)",
    "8x8x4 -> res[[id | 3x3(60) -> 1x1(4)] -> 1x1(4) | res[[id | id] -> 1x1(4)] -> 1x1(4)]",
    "32x32x3 -> 3x3(8, s=2) -> bn -> relu -> res[3x3(8) -> bn | id] -> gap -> fc(10) -> softmax",
    "8x8x4 -> [deconv2x2(4, s=2) | up2 -> 1x1(8)] -> maxpool2x2 -> [res[id] | res[relu] | id]",
    "4x4x2 -> [[[1x1(64) | id] | id] | 3x3(2, s=2) -> up2] -> res[[1x1(16) | 1x1(16)] -> "
    "1x1(71) | 1x1(71)]",
]


def test_simulator_on_hand_examples() -> None:
    # the simulator agrees with the hand-worked numbers above (so it can tell wrong from right)
    cases = {
        "8x8x4 -> 3x3(16) -> 3x3(32, s=2) -> 1x1(8)": 1536,
        "4x4x8 -> [1x1(4) | 3x3(16) -> 1x1(2) | maxpool3x3(s=1)]": 480,
        "4x4x8 -> [id | 1x1(8)]": 512,
        "4x4x8 -> res[3x3(16) -> 1x1(8)]": 512,
        "8x8x4 -> res[1x1(4) | 3x3(64) -> 1x1(4)]": 4608,
        "4x4x8 -> 3x3(16) -> id -> dropout -> 1x1(8)": 384,
    }
    for spec, peak in cases.items():
        assert simulate_peak(_analysis(spec).programs[0]) == peak, spec


@pytest.mark.parametrize("spec", SIMULATED)
def test_peak_matches_independent_simulator(spec: str) -> None:
    analysis = _analysis(spec, batch=2, dtype="float16")
    expected = simulate_peak(analysis.programs[0])
    assert analysis.reports[0].totals.peak_activation_bytes == expected * 2 * 2


@pytest.mark.parametrize("name", ["resnet50", "resnet_stage", "unet_tiny", "inception", "mobilenet_v1", "vgg16"])
def test_peak_matches_simulator_on_examples(name: str) -> None:
    path = EXAMPLES / f"{name}.convcost"
    analysis = analyze_source(Source(str(path), path.read_text(encoding="utf-8")), Options())
    assert not analysis.errors and analysis.reports
    for network, report in zip(analysis.programs, analysis.reports):
        assert report.totals.peak_activation_bytes == simulate_peak(network) * 4, network.name


def test_resnet50_peak_by_hand() -> None:
    # ResNet-50 at 224 (per sample). The stem conv reads 150,528 and writes 802,816; bn and relu
    # read and write 802,816 each (1,605,632). The first block of stage 1 has input
    # X = 56*56*64 = 200,704, held for the projection shortcut:
    #   body's last 1x1(256) writes 56*56*256 = 802,816:   X + 200,704 + 802,816
    #   its bn writes 802,816:                              X + 802,816 + 802,816 = 1,806,336
    #   shortcut 1x1(256) writes 802,816 (body out held):   X + 802,816 + 802,816 = 1,806,336
    #   shortcut bn writes 802,816 (X released):            3 * 802,816 = 2,408,448 <- peak
    #   add writes 802,816 with body and shortcut live:     3 * 802,816 = 2,408,448
    # Every other step holds less (test_peak_matches_simulator_on_examples checks them all).
    path = EXAMPLES / "resnet50.convcost"
    analysis = analyze_source(Source(str(path), path.read_text(encoding="utf-8")), Options())
    assert analysis.reports[0].totals.peak_activation_bytes == 3 * 802_816 * 4
