"""Constant folding of ONNX shape arithmetic (Constant, Shape, Gather, Unsqueeze, Concat of
shapes, Add/Sub/Mul/Div, Cast, Slice, Reshape...) on small tensors, and the GELU pattern.

Values are exact Python numbers (integer shape arithmetic never goes through float). Only
dims are known for weights; an op that needs the values of a weight is refused.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from convcost.importers.onnx_graph import MAX_VALUES, Graph, Node, Number, Tensor

#: Element-wise binary ops folded on constants.
_BINARY: dict[str, Callable[[Number, Number], Number]] = {
    "Add": lambda a, b: a + b,
    "Sub": lambda a, b: a - b,
    "Mul": lambda a, b: a * b,
}


class FoldError(ValueError):
    """A constant op that cannot be folded (the lowering turns it into a located error)."""


def fold(node: Node, args: Sequence[Tensor | None], shape_of: Callable[[int], Tensor]
         ) -> list[Tensor]:
    """The outputs of ``node`` applied to constant ``args`` (``None`` for an omitted input).

    ``shape_of(i)`` gives the ``Shape`` of input ``i`` when it is an activation.
    """
    op, attrs = node.op, node.attrs
    if op in ("Identity", "Dropout"):
        return [_need(args, 0)]
    if op == "Constant":
        return [_constant(node)]
    if op == "Shape":
        known = tuple(int(dim) for dim in shape_of(0).values or ())
        start, end = attrs.get("start", 0), attrs.get("end", len(known))
        picked = known[int(start):int(end)]
        return [Tensor((len(picked),), picked)]
    if op == "Size":
        return [Tensor((), (math.prod(int(v) for v in (shape_of(0).values or ())),))]
    if op in _BINARY or op == "Div":
        return [_binary(op, _values(args, 0), _values(args, 1))]
    data = _need(args, 0)
    if op == "Cast":
        floating = attrs.get("to") in (1, 10, 11, 16)
        values = None if data.values is None else tuple(
            float(v) if floating else int(v) for v in data.values)
        return [Tensor(data.dims, values, floating)]
    if op in ("Unsqueeze", "Squeeze"):
        axes = _axes(node, args)
        return [Tensor(_unsqueeze(data.dims, axes) if op == "Unsqueeze"
                       else _squeeze(data.dims, axes), data.values, data.floating)]
    if op == "Reshape":
        target = _ints(_values(args, 1))
        dims = reshape_dims(data.dims, target, bool(attrs.get("allowzero", 0)))
        return [Tensor(dims, data.values, data.floating)]
    if op == "Flatten":
        axis = _axis(int(attrs.get("axis", 1)), len(data.dims))
        return [Tensor((math.prod(data.dims[:axis]), math.prod(data.dims[axis:])),
                       data.values, data.floating)]
    if op == "Transpose":
        perm = attrs.get("perm") or tuple(reversed(range(len(data.dims))))
        dims = tuple(data.dims[int(axis)] for axis in perm)
        return [Tensor(dims, data.values if len(dims) <= 1 else None, data.floating)]
    if op == "Gather":
        return [_gather(_values(args, 0), _values(args, 1), int(attrs.get("axis", 0)))]
    if op == "Concat":
        parts = [_values(args, index) for index in range(len(args))]
        if any(len(part.dims) > 1 for part in parts):
            raise FoldError("only 1-D constants are concatenated")
        values = tuple(v for part in parts for v in (part.values or ()))
        return [Tensor((len(values),), values, any(part.floating for part in parts))]
    if op == "Slice":
        return [_slice(node, args)]
    if op == "ConstantOfShape":
        dims = tuple(_ints(_values(args, 0)))
        fill = attrs.get("value")
        value: Number = 0.0
        floating = True
        if isinstance(fill, Tensor) and fill.values:
            value, floating = fill.values[0], fill.floating
        size = math.prod(dims)
        return [Tensor(dims, (value,) * size if size <= MAX_VALUES else None, floating)]
    if op == "Range":
        start, limit, delta = (_scalar(_values(args, index)) for index in range(3))
        if delta == 0:
            raise FoldError("Range with a zero step")
        count = max(math.ceil((limit - start) / delta), 0)
        if count > MAX_VALUES:
            raise FoldError("Range too long")
        values = tuple(start + delta * index for index in range(count))
        return [Tensor((count,), values, _values(args, 0).floating)]
    raise FoldError(f"{op} is not folded on constants")


def _need(args: Sequence[Tensor | None], index: int) -> Tensor:
    if index >= len(args) or args[index] is None:
        raise FoldError(f"input {index + 1} is missing")
    tensor = args[index]
    assert tensor is not None
    return tensor


def _values(args: Sequence[Tensor | None], index: int) -> Tensor:
    tensor = _need(args, index)
    if tensor.values is None:
        raise FoldError(f"input {index + 1} is a large tensor whose values are not read")
    return tensor


def _scalar(tensor: Tensor) -> Number:
    if not tensor.values or len(tensor.values) != 1:
        raise FoldError("expected a scalar")
    return tensor.values[0]


def _ints(tensor: Tensor) -> list[int]:
    return [int(value) for value in tensor.values or ()]


def _constant(node: Node) -> Tensor:
    attrs = node.attrs
    value = attrs.get("value")
    if isinstance(value, Tensor):
        return value
    if "value_float" in attrs:
        return Tensor((), (float(attrs["value_float"]),), True)
    if "value_int" in attrs:
        return Tensor((), (int(attrs["value_int"]),))
    for key, floating in (("value_floats", True), ("value_ints", False)):
        if key in attrs:
            values = tuple(attrs[key] or ())
            return Tensor((len(values),), values, floating)
    raise FoldError("a Constant without a tensor, float or int value")


def _binary(op: str, left: Tensor, right: Tensor) -> Tensor:
    floating = left.floating or right.floating
    a, b = left.values or (), right.values or ()
    if len(a) == len(b):
        dims = left.dims if len(left.dims) >= len(right.dims) else right.dims
        pairs = list(zip(a, b))
    elif len(b) == 1:
        dims, pairs = left.dims, [(x, b[0]) for x in a]
    elif len(a) == 1:
        dims, pairs = right.dims, [(a[0], y) for y in b]
    else:
        raise FoldError(f"{op} of constants of {len(a)} and {len(b)} elements")
    if op == "Div":
        if not floating and any(y == 0 for _, y in pairs):
            raise FoldError("integer division by zero")
        values: tuple[Number, ...] = tuple(
            x / y if floating else _int_div(int(x), int(y)) for x, y in pairs)
    else:
        values = tuple(_BINARY[op](x, y) for x, y in pairs)
    return Tensor(dims, values, floating)


def _int_div(a: int, b: int) -> int:
    """ONNX integer Div: truncation toward zero (exact, never through float)."""
    quotient = abs(a) // abs(b)
    return quotient if (a >= 0) == (b >= 0) else -quotient


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def _axes(node: Node, args: Sequence[Tensor | None]) -> list[int]:
    if len(args) > 1 and args[1] is not None:
        return _ints(_values(args, 1))
    axes = node.attrs.get("axes")
    return [int(axis) for axis in axes] if isinstance(axes, tuple) else []


def _unsqueeze(dims: tuple[int, ...], axes: list[int]) -> tuple[int, ...]:
    rank = len(dims) + len(axes)
    wanted = sorted(_axis(axis, rank) for axis in axes)
    result = list(dims)
    for axis in wanted:
        result.insert(axis, 1)
    return tuple(result)


def _squeeze(dims: tuple[int, ...], axes: list[int]) -> tuple[int, ...]:
    if not axes:
        return tuple(dim for dim in dims if dim != 1)
    drop = {_axis(axis, len(dims)) for axis in axes}
    return tuple(dim for index, dim in enumerate(dims) if index not in drop)


def reshape_dims(dims: Sequence[int], target: Sequence[int], allowzero: bool) -> tuple[int, ...]:
    """ONNX Reshape's output dims: ``0`` copies the input dim, ``-1`` is inferred."""
    result = [dims[index] if value == 0 and not allowzero and index < len(dims) else value
              for index, value in enumerate(target)]
    total = math.prod(dims)
    if result.count(-1) > 1 or any(value < -1 for value in result):
        raise FoldError(f"bad Reshape target {list(target)}")
    if -1 in result:
        known = math.prod(value for value in result if value != -1)
        if known == 0 or total % known:
            raise FoldError(f"cannot reshape {list(dims)} to {list(target)}")
        result[result.index(-1)] = total // known
    if math.prod(result) != total:
        raise FoldError(f"cannot reshape {list(dims)} ({total} elements) to {list(target)}")
    return tuple(result)


def _gather(data: Tensor, indices: Tensor, axis: int) -> Tensor:
    if len(data.dims) != 1 or axis != 0:
        raise FoldError("only 1-D constants are gathered from")
    count = data.dims[0]
    picked = []
    for index in _ints(indices):
        if not -count <= index < count:
            raise FoldError(f"Gather index {index} is out of range for {count} elements")
        picked.append((data.values or ())[index])
    return Tensor(indices.dims, tuple(picked), data.floating)


def slice_range(start: int, end: int, step: int, size: int) -> tuple[int, int]:
    """ONNX Slice's clamped ``[start, end)`` along an axis of ``size`` (step 1)."""
    if step != 1:
        raise FoldError("only Slice with step 1 is supported")
    start = start + size if start < 0 else start
    end = end + size if end < 0 else end
    start, end = min(max(start, 0), size), min(max(end, 0), size)
    return start, max(start, end)


def slice_args(node: Node, args: Sequence[Tensor | None], rank: int
               ) -> list[tuple[int, int, int, int]]:
    """``(axis, start, end, step)`` of each axis a Slice node cuts (opset 10+ or 1-9)."""
    if len(args) > 1:
        starts, ends = _ints(_values(args, 1)), _ints(_values(args, 2))
        axes = _ints(_values(args, 3)) if len(args) > 3 and args[3] is not None \
            else list(range(len(starts)))
        steps = _ints(_values(args, 4)) if len(args) > 4 and args[4] is not None \
            else [1] * len(starts)
    else:
        starts = [int(v) for v in node.attrs.get("starts") or ()]
        ends = [int(v) for v in node.attrs.get("ends") or ()]
        axes = [int(v) for v in node.attrs.get("axes") or range(len(starts))]
        steps = [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise FoldError("Slice starts, ends, axes and steps differ in length")
    return [(_axis(axis, rank), start, end, step)
            for axis, start, end, step in zip(axes, starts, ends, steps)]


def _slice(node: Node, args: Sequence[Tensor | None]) -> Tensor:
    data = _values(args, 0)
    if len(data.dims) != 1:
        raise FoldError("only 1-D constants are sliced")
    start, end = 0, data.dims[0]
    for axis, first, last, step in slice_args(node, args, 1):
        if axis != 0:
            raise FoldError("Slice axis out of range")
        start, end = slice_range(first, last, step, data.dims[0])
    values = (data.values or ())[start:end]
    return Tensor((len(values),), values, data.floating)


def fuse_patterns(graph: Graph) -> tuple[Node, ...]:
    """The nodes with each exported exact GELU (``x * 0.5 * (1 + erf(x / sqrt 2))``, as
    ``Div -> Erf -> Add -> Mul -> Mul``) replaced by one ``Gelu`` node."""
    if not any(node.op == "Erf" for node in graph.nodes):
        return graph.nodes
    producer = {name: node for node in graph.nodes for name in node.outputs}
    readers: dict[str, list[Node]] = {}
    for node in graph.nodes:
        for name in node.inputs:
            readers.setdefault(name, []).append(node)
    constants = dict(graph.constants)
    for node in graph.nodes:
        if node.op == "Constant":
            try:
                constants[node.outputs[0]] = _constant(node)
            except FoldError:
                pass

    def scalar(name: str, expected: float) -> bool:
        tensor = constants.get(name)
        return (tensor is not None and tensor.values is not None and len(tensor.values) == 1
                and abs(float(tensor.values[0]) - expected) < 1e-4)

    def sole(name: str, op: str) -> Node | None:
        found = readers.get(name, [])
        return found[0] if len(found) == 1 and found[0].op == op else None

    def other(node: Node, name: str) -> str | None:
        if len(node.inputs) != 2 or name not in node.inputs:
            return None
        return node.inputs[1] if node.inputs[0] == name else node.inputs[0]

    removed: set[int] = set()
    replaced: dict[int, Node] = {}
    for erf in graph.nodes:
        if erf.op != "Erf":
            continue
        div = producer.get(erf.inputs[0])
        if div is None or div.op != "Div" or len(readers.get(div.outputs[0], [])) != 1 \
                or not scalar(div.inputs[1], math.sqrt(2.0)):
            continue
        x = div.inputs[0]
        add = sole(erf.outputs[0], "Add")
        if add is None or not scalar(other(add, erf.outputs[0]) or "", 1.0):
            continue
        first = sole(add.outputs[0], "Mul")
        if first is None:
            continue
        partner = other(first, add.outputs[0])
        absorbed = [div, erf, add, first]
        if partner == x:  # (x * (1 + erf)) * 0.5
            last = sole(first.outputs[0], "Mul")
            if last is None or not scalar(other(last, first.outputs[0]) or "", 0.5):
                continue
            absorbed.append(last)
        else:  # (x * 0.5) * (1 + erf)
            half = producer.get(partner or "")
            if half is None or half.op != "Mul" or other(half, x) is None \
                    or not scalar(other(half, x) or "", 0.5) \
                    or len(readers.get(half.outputs[0], [])) != 1:
                continue
            absorbed.append(half)
            last = first
        for node in absorbed:
            removed.add(node.position)
        replaced[last.position] = Node("Gelu", erf.name, (x,), last.outputs, {}, last.position)
    return tuple(replaced.get(node.position, node) for node in graph.nodes
                 if node.position not in removed or node.position in replaced)
