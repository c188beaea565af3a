"""Reports as plain data (exact integers) and their ``convcost/1`` JSON form."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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

#: What ``--sort`` orders layers and models by (the heaviest first).
SORT_KEYS = ("macs", "params", "memory", "time")

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

    def to_json(self, layers: bool = True) -> dict[str, Any]:
        """The model's JSON object; without ``layers`` its layer list is a placeholder that
        :func:`document_text` fills in."""
        data = {
            "name": self.name, "source": self.source, "line": self.line, "spec": self.spec,
            "input": self.input.as_list(), "output": self.output.as_list(),
            "batch": self.batch, "dtype": self.dtype, "totals": self.totals.to_json(),
            "layers": [layer.to_json() for layer in self.layers] if layers else _LAYERS,
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
    append = layers.append
    # The hot loop of every analysis. A step's costs depend on its geometry, the batch and
    # the dtype alone, so they are computed once per geometry (repeated blocks and a batch's
    # files repeat it), already in LayerReport's field order (macs .. traffic_bytes); a
    # report is then the step's first six fields (index .. output, the same as
    # LayerReport's), the costs and no extras, joined as tuples.
    costs = _COSTS
    if len(costs) >= _MAX_COSTS:
        costs.clear()
    scale = (batch, size)
    uses: dict[tuple[int, ...], int] = {}
    for step in program.steps:
        # batch, dtype size, kind, input, output, operands...affine
        key = scale + step[2:3] + step[4:6] + step[8:20]
        cost = costs.get(key)
        if cost is None:
            macs_, other_, params_, buffers_ = step_cost(step)
            h, w, c = step.output
            cost = costs[key] = (macs_ * batch, other_ * batch, params_, buffers_,
                                 params_ * size, h * w * c * activation,
                                 traffic_elements(step) * activation
                                 + (params_ + buffers_) * size)
        uses[cost] = uses.get(cost, 0) + 1
        append(_new_report(LayerReport, step[:6] + cost + _NO_EXTRAS))
    macs = other = params = buffers = traffic = 0
    for (macs_, other_, params_, buffers_, _, _, traffic_), count in uses.items():
        macs += macs_ * count
        other += other_ * count
        params += params_ * count
        buffers += buffers_ * count
        traffic += traffic_ * count
    totals = _new_report(Totals, (macs, other, params, buffers, params * size,
                                  peak_activation_elements(program) * activation, traffic))
    return _new_report(ModelReport, (program.name, source, spec, program.input, program.output,
                                     batch, dtype, totals, tuple(layers), line, None, ()))


#: ``tuple.__new__`` builds a NamedTuple from a full tuple of its fields, skipping the
#: keyword-argument ``__new__`` (about 3x cheaper; reports are made by the thousand).
_new_report = tuple.__new__
#: (batch, dtype size, a step's geometry) -> its costs in LayerReport's order; see
#: :func:`build_report`. Cleared when full, between models.
_COSTS: dict[tuple[object, ...], tuple[int, ...]] = {}
_MAX_COSTS = 8192
#: A new layer report's ``bench`` and ``roofline``.
_NO_EXTRAS = (None, ())


def document(models: Sequence[ModelReport], errors: Sequence[ConvcostError], *,
             layers: bool = True, **extra: Any) -> dict[str, Any]:
    """The ``convcost/1`` JSON document for ``models`` and ``errors`` (``layers=False``: see
    :meth:`ModelReport.to_json`)."""
    return {"schema": SCHEMA, "models": [model.to_json(layers) for model in models],
            "errors": [error.to_json() for error in errors], **extra}


#: Stands for a model's layer list in the skeleton :func:`document_text` encodes (a NUL
#: cannot occur in any name, path or spec convcost reads).
_LAYERS = "\x00convcost-layers\x00"


def document_text(models: Sequence[ModelReport], errors: Sequence[ConvcostError], *,
                  indent: int | None = None, rendered: Sequence[str] = (),
                  **extra: Any) -> str:
    """:func:`document` as JSON text: indented by ``indent``, or compact (``None``, see
    :func:`document_parts`)."""
    import json

    if indent is not None:
        if rendered:
            raise ValueError("rendered models are compact JSON; they cannot be indented")
        return json.dumps(document(models, errors, **extra), indent=indent, ensure_ascii=False,
                          allow_nan=False)
    return "".join(document_parts(models, errors, rendered=rendered, **extra))


def document_parts(models: Sequence[ModelReport], errors: Sequence[ConvcostError], *,
                   rendered: Sequence[str] = (), **extra: Any) -> Iterator[str]:
    """:func:`document` as compact JSON text, in pieces to write one after another (a
    100,000-layer model is never one string).

    Written model by model, each layer formatted directly rather than built as a dict (2.3x
    cheaper: the layers are nearly all of a document); the text equals ``json.dumps`` of
    :func:`document`, which the tests check. ``rendered`` are models already written by
    :func:`models_text` (in other processes), placed after ``models``."""
    from convcost.cost.jsontext import compact  # on use: it costs start-up time

    skeleton = compact(document([], errors, **extra))
    # document() puts the schema and then the models first: '{"schema":"convcost/1","models":[]'
    head = skeleton.index('"models":[]') + len('"models":[')
    yield skeleton[:head]
    first = True
    write = _layer_writer()
    for model in models:
        if not first:
            yield ","
        first = False
        yield from _model_parts(model, write)
    for part in rendered:
        if part:
            yield part if first else "," + part
            first = False
    yield skeleton[head:]


def models_text(models: Sequence[ModelReport]) -> str:
    """The compact JSON objects of ``models``, comma-separated (the inside of a document's
    ``models`` array)."""
    write = _layer_writer()
    return ",".join("".join(_model_parts(model, write)) for model in models)


#: Layers per piece of :func:`document_parts`.
_LAYERS_PER_PART = 2048


def _model_parts(model: ModelReport, write: Callable[[LayerReport], str]) -> Iterator[str]:
    """One model's compact JSON object, in pieces, its layers written by ``write`` (see
    :func:`_layer_writer`)."""
    from convcost.cost.jsontext import compact, quote

    if model.bench is None and not model.roofline:
        # The common case formatted directly, like a layer (a batch of small models spent
        # a fifth of its time in json.dumps of these skeletons).
        (macs, other, params, buffers, param_bytes, peak, traffic) = model.totals
        before = _MODEL_HEAD_JSON % (
            quote(model.name), quote(model.source), model.line, quote(model.spec),
            *model.input, *model.output, model.batch, quote(model.dtype), macs, 2 * macs,
            other, params, buffers, param_bytes, peak, traffic)
        after = "}"
    else:
        marker = quote(_LAYERS)
        skeleton = compact(model.to_json(layers=False))
        if skeleton.count(marker) != 1:  # a placeholder in user text after all: the slow way
            yield compact(model.to_json())
            return
        before, _, after = skeleton.partition(marker)
    yield before + "["
    layers = model.layers
    for start in range(0, len(layers), _LAYERS_PER_PART):
        text = ",".join(map(write, layers[start:start + _LAYERS_PER_PART]))
        yield text if start == 0 else "," + text
    yield "]" + after


#: A model's compact JSON object up to its layers (:meth:`ModelReport.to_json`, in its order,
#: without bench and roofline).
_MODEL_HEAD_JSON = (
    '{"name":%s,"source":%s,"line":%d,"spec":%s,"input":[%d,%d,%d],"output":[%d,%d,%d],'
    '"batch":%d,"dtype":%s,"totals":{"macs":%d,"flops":%d,"other_ops":%d,"params":%d,'
    '"buffers":%d,"param_bytes":%d,"peak_activation_bytes":%d,"traffic_bytes":%d},'
    '"layers":')


def _layer_writer() -> Callable[[LayerReport], str]:
    """A function writing one layer's compact JSON object (:meth:`LayerReport.to_json`,
    formatted directly); one serves a whole document."""
    from convcost.cost.jsontext import compact, quote
    # Everything after "path" depends on the layer's costs and shapes alone, which repeated
    # layers share: it is formatted once per distinct tail (half the time of a 100,000-layer
    # chain's JSON).
    tails: dict[tuple[object, ...], str] = {}

    def write(layer: LayerReport) -> str:
        if layer[13] is not None or layer[14]:  # bench, roofline
            return compact(layer.to_json())
        key = layer[2:13]
        tail = tails.get(key)
        if tail is None:
            (kind, text, (ih, iw, ic), (oh, ow, oc), macs, other, params, buffers,
             param_bytes, output_bytes, traffic) = key
            flops = 2 * macs
            tail = tails[key] = _LAYER_TAIL_JSON % (
                quote(kind), quote(text), ih, iw, ic, oh, ow, oc, macs, flops, other, params,
                buffers, param_bytes, output_bytes, traffic,
                float.__repr__(flops / traffic) if traffic else "null")
        # One %-format of the whole object: about twice as fast as an f-string of its parts.
        return _LAYER_HEAD_JSON % (layer[0], quote(layer[1]), tail)

    return write


#: A layer's compact JSON object (the keys of :meth:`LayerReport.to_json`, in its order):
#: its index and path, then the rest.
_LAYER_HEAD_JSON = '{"index":%d,"path":%s,%s'
_LAYER_TAIL_JSON = (
    '"kind":%s,"text":%s,"input":[%d,%d,%d],"output":[%d,%d,%d],'
    '"macs":%d,"flops":%d,"other_ops":%d,"params":%d,"buffers":%d,"param_bytes":%d,'
    '"output_bytes":%d,"traffic_bytes":%d,"intensity":%s}')


def schema_text() -> str:
    """The JSON Schema of ``convcost/1`` documents, as shipped in the package."""
    from importlib.resources import files

    return files("convcost").joinpath("schema.json").read_text(encoding="utf-8")
