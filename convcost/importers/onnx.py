"""ONNX models in: ``read_onnx`` lowers a model file's bytes to a :class:`Program`.

Only the graph and the initializer dims are read; weights are never materialised, and a
model whose external weight file is missing still analyses. Importing this module does not
import ``onnx``; reading a model does (its generated protobuf module only).
"""

from __future__ import annotations

from convcost.errors import OnnxError
from convcost.model.program import Program

__all__ = ["OnnxError", "read_onnx"]


def read_onnx(data: bytes, name: str, *, size: tuple[int, int] | None, batch: int | None,
              source: str) -> Program:
    """The program of the ONNX model in ``data``, named ``name``.

    ``size`` replaces the input's HxW (and gives dynamic ones), ``batch`` is the batch used
    for shape arithmetic when the graph's batch dim is dynamic (the program is per sample).
    Raises :class:`OnnxError` (located at ``source``) for a file that is not ONNX, a missing
    ``onnx`` package, an unknown dynamic dim or an unsupported op.
    """
    from convcost.importers.onnx_fold import fuse_patterns
    from convcost.importers.onnx_graph import parse_model, read_graph
    from convcost.importers.onnx_lower import lower
    from convcost.importers.onnx_wire import strip_weights

    model = parse_model(strip_weights(data), source)
    graph = read_graph(model, source)
    del model  # the protobuf holds the weights' bytes: free it before lowering
    try:
        nodes = fuse_patterns(graph)
    except (IndexError, KeyError, TypeError, ValueError):  # malformed nodes: lowered unfused
        nodes = graph.nodes                                 # and reported there
    try:
        return lower(graph, nodes, name, source, size, batch)
    except RecursionError:
        raise OnnxError("the graph is too deeply nested", source) from None

