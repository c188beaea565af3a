"""Memory model: bytes per dtype, peak live activations, traffic and arithmetic intensity.

Peak inference activation memory is the largest number of activation bytes alive at once
when the network runs in execution order: each step holds the tensors it reads and the one it
writes, plus whatever a pending concat or residual add still needs (the branch input until the
last branch has read it, finished branch outputs, the residual input until the shortcut has
read it, the body output until the add). ``id`` and ``dropout`` alias their input and allocate
nothing; every other layer, concat and add writes a new tensor.
"""

from __future__ import annotations

from convcost.net import ALIAS_KINDS, Branches, Layer, Network, Node, Residual

#: Bytes per element of each supported ``--dtype``.
DTYPE_BYTES: dict[str, int] = {
    "float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8,
}


def traffic_elements(layer: Layer) -> int:
    """Activation elements a layer reads and writes (per sample); 0 for aliasing layers."""
    if layer.kind in ALIAS_KINDS:
        return 0
    read = sum(op.elements for op in layer.operands) if layer.operands else layer.input.elements
    return read + layer.output.elements


class _Live:
    """Reference-counted live tensors (sizes in elements per sample) and the peak seen."""

    def __init__(self) -> None:
        self.sizes: dict[int, int] = {}
        self.refs: dict[int, int] = {}
        self.total = 0
        self.peak = 0
        self.next_id = 0

    def alloc(self, elements: int, refs: int = 1) -> int:
        tensor = self.next_id
        self.next_id += 1
        self.sizes[tensor] = elements
        self.refs[tensor] = refs
        self.total += elements
        if self.total > self.peak:
            self.peak = self.total
        return tensor

    def share(self, tensor: int, extra: int) -> None:
        self.refs[tensor] += extra

    def release(self, tensor: int) -> None:
        self.refs[tensor] -= 1
        if self.refs[tensor] == 0:
            self.total -= self.sizes.pop(tensor)
            del self.refs[tensor]

    def step(self, inputs: list[int], out_elements: int) -> int:
        """Write a new tensor while ``inputs`` are still live, then release them."""
        out = self.alloc(out_elements)
        for tensor in inputs:
            self.release(tensor)
        return out


def peak_activation_elements(network: Network) -> int:
    """Peak live activation elements of one sample, input included (see module docstring)."""
    live = _Live()
    current = live.alloc(network.input.elements)
    _run(live, network.nodes, current)
    return live.peak


def _run(live: _Live, nodes: tuple[Node, ...], current: int) -> int:
    for node in nodes:
        if isinstance(node, Layer):
            if node.kind not in ALIAS_KINDS:
                current = live.step([current], node.output.elements)
        elif isinstance(node, Branches):
            live.share(current, len(node.branches) - 1)
            outputs = [_run(live, branch, current) for branch in node.branches]
            current = live.step(outputs, node.concat.output.elements)
        else:
            assert isinstance(node, Residual)
            live.share(current, 1)
            body = _run(live, node.body, current)
            shortcut = _run(live, node.shortcut, current)
            current = live.step([body, shortcut], node.add.output.elements)
    return current
