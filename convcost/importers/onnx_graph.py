"""Reading an ONNX file into plain graph data: nodes, constants (dims, and values only when
small), the graph input and output. Weights are never materialised: an initializer is its dims.

The protobuf classes come from ``onnx``'s generated module alone (``onnx_ml_pb2``), loaded
without running ``import onnx`` (which imports NumPy and most of the package: about 0.2 s),
so analysing an ONNX file costs little more than Python's start-up plus parsing.
"""

from __future__ import annotations

import struct
import sys
from typing import Any, NamedTuple, Union

from convcost.errors import OnnxError
from convcost.model.program import Shape

#: The pip command that installs ONNX support.
INSTALL_HINT = "pip install 'convcost[onnx]'"
#: Constants with more elements than this keep only their dims (weights, never read).
MAX_VALUES = 4096
#: Largest graph lowered (nodes); beyond it the model is refused rather than walked for long.
MAX_NODES = 200_000

Number = Union[int, float]
AttrValue = Union[int, float, str, tuple[int, ...], tuple[float, ...], "Tensor", None]

#: ONNX TensorProto data types: struct format of one element, is floating point.
_DTYPES: dict[int, tuple[str, bool]] = {
    1: ("f", True), 2: ("B", False), 3: ("b", False), 4: ("H", False), 5: ("h", False),
    6: ("i", False), 7: ("q", False), 9: ("?", False), 10: ("e", True), 11: ("d", True),
    12: ("I", False), 13: ("Q", False),
}
_FLOAT_TYPES = frozenset(code for code, (_, floating) in _DTYPES.items() if floating)


class Tensor(NamedTuple):
    """A constant: its dims and, when known and small, its values (flat, row-major)."""

    dims: tuple[int, ...]
    values: tuple[Number, ...] | None = None
    floating: bool = False

    @property
    def size(self) -> int:
        count = 1
        for dim in self.dims:
            count *= dim
        return count


class Act(NamedTuple):
    """An activation tensor while lowering: program value id, per-sample shape (H, W, C), ONNX
    layout (``nchw``, ``nhwc``, ``flat``, ``grouped``/``grouped_t`` inside a channel
    shuffle) and the shuffle's group count."""

    value: int
    shape: Shape
    layout: str = "nchw"
    groups: int = 1


class Node(NamedTuple):
    """One graph node: op type (``domain::op`` outside the default domain), name, tensor
    names read and written (``""`` for an omitted optional input), attributes."""

    op: str
    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]  # values as _attribute converts them (AttrValue)
    position: int


class Graph(NamedTuple):
    """A graph as plain data: the input's name and dims (``None`` or a name for a dynamic
    dim), the output names, constants by name, nodes in file order, opset of ai.onnx."""

    input_name: str
    input_dims: tuple[int | str | None, ...]
    outputs: tuple[str, ...]
    constants: dict[str, Tensor]
    nodes: tuple[Node, ...]
    opset: int


def parse_model(data: bytes, source: str) -> Any:
    """The ``ModelProto`` of ``data``; a located :class:`OnnxError` when it is not ONNX."""
    model_class = _model_class(source)
    model = model_class()
    try:
        model.ParseFromString(data)
    except Exception as error:  # protobuf's DecodeError, or a RuntimeError from upb
        detail = str(error).strip() or type(error).__name__
        raise OnnxError(f"not a valid ONNX model (truncated or not ONNX: {detail})",
                        source) from None
    if not model.HasField("graph") or not model.ir_version:
        raise OnnxError("not an ONNX model: the file has no graph or no IR version", source)
    return model


_MODEL_CLASS: list[Any] = []  # the ModelProto class, once loaded


def _model_class(source: str) -> Any:
    """``onnx.ModelProto``, from ``onnx/onnx_ml_pb2.py`` alone when it can be loaded so (under
    a private name: ``import onnx`` later still loads its own copy of the module)."""
    module = sys.modules.get("onnx.onnx_ml_pb2")
    if module is not None:
        return module.ModelProto
    if not _MODEL_CLASS:
        _MODEL_CLASS.append(_load_model_class(source))
    return _MODEL_CLASS[0]


def _load_model_class(source: str) -> Any:
    import importlib.util  # here only: not needed for spec analysis

    try:
        spec = importlib.util.find_spec("onnx")
    except (ImportError, ValueError, AttributeError):  # not installed, or blocked
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise OnnxError(f"reading ONNX models needs the onnx package: {INSTALL_HINT}", source)
    try:
        import os

        path = os.path.join(list(spec.submodule_search_locations)[0], "onnx_ml_pb2.py")
        pb2_spec = importlib.util.spec_from_file_location("convcost_onnx_ml_pb2", path)
        if pb2_spec is None or pb2_spec.loader is None:
            raise ImportError(path)
        module = importlib.util.module_from_spec(pb2_spec)
        pb2_spec.loader.exec_module(module)
    except Exception:  # an unusual onnx layout: the ordinary (slower) import
        try:
            import onnx
        except ImportError:
            raise OnnxError(f"reading ONNX models needs the onnx package: {INSTALL_HINT}",
                            source) from None
        return onnx.ModelProto
    return module.ModelProto


def read_graph(model: Any, source: str) -> Graph:
    """The plain :class:`Graph` of a parsed ``ModelProto``."""
    graph = model.graph
    opset = 0
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            opset = int(entry.version)
    if len(graph.node) > MAX_NODES:
        raise OnnxError(f"the graph has {len(graph.node):,} nodes, above the limit of "
                        f"{MAX_NODES:,}", source)
    constants: dict[str, Tensor] = {}
    for tensor in graph.initializer:
        constants[tensor.name] = tensor_of(tensor)
        if any(dim < 0 for dim in constants[tensor.name].dims):
            raise OnnxError(f"initializer '{tensor.name}' has negative dims "
                            f"{list(tensor.dims)}", source)
    inputs = [value for value in graph.input if value.name not in constants]
    if len(inputs) != 1:
        names = ", ".join(f"'{value.name}'" for value in inputs) or "none"
        raise OnnxError(f"the graph must have exactly one input that is not an initializer; "
                        f"it has {len(inputs)} ({names})", source)
    entry_value = inputs[0]
    if not entry_value.type.HasField("tensor_type"):
        raise OnnxError(f"graph input '{entry_value.name}' is not a tensor", source)
    dims: list[int | str | None] = []
    for dim in entry_value.type.tensor_type.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            dims.append(int(dim.dim_value))
        else:
            dims.append(dim.dim_param or None)
    nodes = []
    for position, node in enumerate(graph.node):
        op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        attrs = {attribute.name: _attribute(attribute) for attribute in node.attribute}
        nodes.append(Node(op, node.name or f"{node.op_type}_{position}", tuple(node.input),
                          tuple(node.output), attrs, position))
    outputs = tuple(value.name for value in graph.output)
    if not outputs:
        raise OnnxError("the graph has no output", source)
    return Graph(entry_value.name, tuple(dims), outputs, constants, tuple(nodes), opset)


def tensor_of(tensor: Any) -> Tensor:
    """Dims of a ``TensorProto``, and its values when small and stored in the file."""
    dims = tuple(int(dim) for dim in tensor.dims)
    code = int(tensor.data_type)
    floating = code in _FLOAT_TYPES
    size = 1
    for dim in dims:
        size *= dim
    if size > MAX_VALUES or code not in _DTYPES or tensor.data_location == 1:  # 1: external
        return Tensor(dims, None, floating)
    values: tuple[Number, ...] | None = None
    if tensor.raw_data:
        fmt = _DTYPES[code][0]
        try:
            values = struct.unpack(f"<{size}{fmt}", tensor.raw_data)
        except struct.error:
            values = None
    elif code == 1 and len(tensor.float_data) == size:
        values = tuple(tensor.float_data)
    elif code == 11 and len(tensor.double_data) == size:
        values = tuple(tensor.double_data)
    elif code in (7,) and len(tensor.int64_data) == size:
        values = tuple(tensor.int64_data)
    elif code in (2, 3, 4, 5, 6, 9) and len(tensor.int32_data) == size:
        values = tuple(tensor.int32_data)
    elif code in (12, 13) and len(tensor.uint64_data) == size:
        values = tuple(tensor.uint64_data)
    if values is not None and code == 9:
        values = tuple(int(bool(value)) for value in values)
    return Tensor(dims, values, floating)


def _attribute(attribute: Any) -> AttrValue:
    kind = attribute.type
    if kind == 1:
        return float(attribute.f)
    if kind == 2:
        return int(attribute.i)
    if kind == 3:
        return bytes(attribute.s).decode("utf-8", errors="replace")
    if kind == 4:
        return tensor_of(attribute.t)
    if kind == 6:
        return tuple(float(value) for value in attribute.floats)
    if kind == 7:
        return tuple(int(value) for value in attribute.ints)
    return None  # graphs, strings lists, sparse tensors: no op lowered here reads them
