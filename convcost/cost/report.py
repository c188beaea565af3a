"""Reports as plain data (exact integers) and their ``convcost/1`` JSON form."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from convcost.cost.handlers import step_cost
from convcost.cost.memory import peak_activation_elements, traffic_elements
from convcost.errors import ConvcostError
from convcost.model.program import Program, Shape

if TYPE_CHECKING:
    from convcost.bench.results import LayerBench, ModelBench
    from convcost.roofline.apply import ModelRooflineTime, RooflineTime

SCHEMA = "convcost/1"

#: The metrics of a model's totals that comparisons and checks use, as (JSON key in
#: ``totals``, noun in sentences, is a byte count): the one metrics table.
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("macs", "MACs", False),
    ("params", "params", False),
    ("peak_activation_bytes", "peak memory", True),
    ("param_bytes", "param memory", True),
)
#: The metrics ``compare`` puts side by side, as (JSON key, noun).
COMPARED_METRICS: tuple[tuple[str, str], ...] = tuple(
    (key, noun) for key, noun, _ in METRICS if key != "param_bytes")
METRIC_NAMES = {key: noun for key, noun, _ in METRICS}
BYTE_METRICS = frozenset(key for key, _, is_bytes in METRICS if is_bytes)

#: Bytes per element of each supported ``--dtype``: the one dtype table.
DTYPE_BYTES: dict[str, int] = {
    "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8,
}


class LayerReport(NamedTuple):
    """One layer's exact costs at the report's batch and dtype (bytes, ops)."""

    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: the domain name
    path: str
    kind: str
    text: str
    input: Shape
    output: Shape
    macs: int
    other_ops: int
    params: int
    buffers: int
    param_bytes: int
    output_bytes: int
    traffic_bytes: int
    #: Measured figures (``--bench``), in the JSON layer's ``bench`` object.
    bench: LayerBench | None = None
    #: Predicted times per device (``--device``), in the JSON layer's ``roofline`` array.
    roofline: tuple[RooflineTime, ...] = ()

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def intensity(self) -> float | None:
        """Arithmetic intensity, FLOPs per byte of traffic (None when there is no traffic)."""
        return self.flops / self.traffic_bytes if self.traffic_bytes else None

    def to_json(self) -> dict[str, Any]:
        flops, traffic = 2 * self.macs, self.traffic_bytes  # inline: this runs per layer
        data = {
            "index": self.index, "path": self.path, "kind": self.kind, "text": self.text,
            "input": list(self.input), "output": list(self.output),
            "macs": self.macs, "flops": flops, "other_ops": self.other_ops,
            "params": self.params, "buffers": self.buffers, "param_bytes": self.param_bytes,
            "output_bytes": self.output_bytes, "traffic_bytes": traffic,
            "intensity": flops / traffic if traffic else None,
        }
        if self.bench is not None:
            data["bench"] = self.bench.to_json()
        if self.roofline:
            data["roofline"] = [time.to_json() for time in self.roofline]
        return data


class Totals(NamedTuple):
    """Whole-model exact counts (bytes, ops)."""

    macs: int
    other_ops: int
    params: int
    buffers: int
    param_bytes: int
    peak_activation_bytes: int
    traffic_bytes: int

    @property
    def flops(self) -> int:
        return 2 * self.macs

    def to_json(self) -> dict[str, Any]:
        return {
            "macs": self.macs, "flops": self.flops, "other_ops": self.other_ops,
            "params": self.params, "buffers": self.buffers, "param_bytes": self.param_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "traffic_bytes": self.traffic_bytes,
        }


class ModelReport(NamedTuple):
    """One analysed model."""

    name: str
    source: str
    spec: str
    input: Shape
    output: Shape
    batch: int
    dtype: str
    totals: Totals
    layers: tuple[LayerReport, ...]
    line: int = 0
    #: The whole chain's measurement (``--bench``), in the JSON model's ``bench`` object.
    bench: ModelBench | None = None
    #: Predicted whole-model times per device (``--device``), in the JSON ``roofline`` array.
    roofline: tuple[ModelRooflineTime, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = {
            "name": self.name, "source": self.source, "line": self.line, "spec": self.spec,
            "input": self.input.as_list(), "output": self.output.as_list(),
            "batch": self.batch, "dtype": self.dtype, "totals": self.totals.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.bench is not None:
            data["bench"] = self.bench.to_json()
        if self.roofline:
            data["roofline"] = [time.to_json() for time in self.roofline]
        return data


def build_report(program: Program, *, source: str, spec: str, batch: int = 1,
                 dtype: str = "float32", line: int = 0) -> ModelReport:
    """Cost every step of ``program`` and total them, at ``batch`` samples of ``dtype``."""
    size = DTYPE_BYTES[dtype]
    activation = batch * size
    layers: list[LayerReport] = []
    macs = other = params = buffers = traffic = 0
    for layer in program.steps:
        cost = step_cost(layer)
        weight_bytes = (cost.params + cost.buffers) * size
        report = LayerReport(
            index=layer.index, path=layer.path, kind=layer.kind, text=layer.text,
            input=layer.input, output=layer.output,
            macs=cost.macs * batch, other_ops=cost.other_ops * batch, params=cost.params,
            buffers=cost.buffers, param_bytes=cost.params * size,
            output_bytes=layer.output.elements * activation,
            traffic_bytes=traffic_elements(layer) * activation
            + (weight_bytes if cost.params or cost.buffers else 0),
        )
        layers.append(report)
        macs += report.macs
        other += report.other_ops
        params += cost.params
        buffers += cost.buffers
        traffic += report.traffic_bytes
    totals = Totals(macs=macs, other_ops=other, params=params, buffers=buffers,
                    param_bytes=params * size,
                    peak_activation_bytes=peak_activation_elements(program) * activation,
                    traffic_bytes=traffic)
    return ModelReport(name=program.name, source=source, spec=spec, input=program.input,
                       output=program.output, batch=batch, dtype=dtype, totals=totals,
                       layers=tuple(layers), line=line)


def document(models: Sequence[ModelReport], errors: Sequence[ConvcostError],
             **extra: Any) -> dict[str, Any]:
    """The ``convcost/1`` JSON document for ``models`` and ``errors``."""
    return {"schema": SCHEMA, "models": [model.to_json() for model in models],
            "errors": [error.to_json() for error in errors], **extra}


def schema_text() -> str:
    """The JSON Schema of ``convcost/1`` documents, as shipped in the package."""
    from importlib.resources import files

    return files("convcost").joinpath("schema.json").read_text(encoding="utf-8")
