"""The cost model: one handler per layer kind, in a registry (like fvcore's op handles).

Conventions (per sample; the report multiplies by the batch):

- **MACs** are multiply-accumulates of convolution, transposed-convolution and fc weights only:
  conv ``Kh*Kw*(Cin/g)*Cout*Hout*Wout``; deconv ``Kh*Kw*(Cin/g)*Cout*Hin*Win`` (input
  positions); fc ``in*out``. Bias additions are not MACs. FLOPs = 2 * MACs.
- **other ops** are element-wise work, never mixed into MACs: bias add 1 per output element,
  bn 2 per element, each activation 1 per element, pooling Kh*Kw per output element, gap 1 per
  input element, residual add 1 per output element; up, dropout, id and concat 0.
- **params** are learnable (weights, biases, bn gamma and beta); bn running mean and variance
  are **buffers**.

A kind without a handler raises :class:`UnsupportedLayer`; it is never silently costed as 0.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from convcost.net import ACTIVATION_KINDS, Layer


class LayerCost(NamedTuple):
    """Exact per-sample counts of one layer."""

    macs: int = 0
    other_ops: int = 0
    params: int = 0
    buffers: int = 0


class UnsupportedLayer(LookupError):
    """A layer kind with no cost handler (a bug in convcost, never a silent zero)."""


Handler = Callable[[Layer], LayerCost]
HANDLERS: dict[str, Handler] = {}
_FREE = LayerCost()


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the cost handler of ``kinds``."""
    def register(function: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = function
        return function
    return register


def layer_cost(layer: Layer) -> LayerCost:
    """The exact per-sample cost of ``layer``."""
    handler = HANDLERS.get(layer.kind)
    if handler is None:
        raise UnsupportedLayer(f"no cost handler for layer kind '{layer.kind}'")
    return handler(layer)


def _weights(layer: Layer) -> int:
    kh, kw = layer.kernel_hw
    return kh * kw * (layer.input.c // layer.groups) * layer.output.c


@handles("conv")
def _conv(layer: Layer) -> LayerCost:
    weights = _weights(layer)
    out = layer.output
    bias = out.c if layer.bias else 0
    return LayerCost(macs=weights * out.h * out.w, other_ops=out.elements if bias else 0,
                     params=weights + bias)


@handles("deconv")
def _deconv(layer: Layer) -> LayerCost:
    weights = _weights(layer)
    bias = layer.output.c if layer.bias else 0
    return LayerCost(macs=weights * layer.input.h * layer.input.w,
                     other_ops=layer.output.elements if bias else 0, params=weights + bias)


@handles("fc")
def _fc(layer: Layer) -> LayerCost:
    weights = layer.input.elements * layer.output.c
    bias = layer.output.c if layer.bias else 0
    return LayerCost(macs=weights, other_ops=bias, params=weights + bias)


@handles("maxpool", "avgpool")
def _pool(layer: Layer) -> LayerCost:
    kh, kw = layer.kernel_hw
    return LayerCost(other_ops=kh * kw * layer.output.elements)


@handles("gap")
def _gap(layer: Layer) -> LayerCost:
    return LayerCost(other_ops=layer.input.elements)


@handles("bn")
def _bn(layer: Layer) -> LayerCost:
    channels = layer.output.c
    return LayerCost(other_ops=2 * layer.output.elements, params=2 * channels,
                     buffers=2 * channels)


@handles(*ACTIVATION_KINDS, "add")
def _elementwise(layer: Layer) -> LayerCost:
    return LayerCost(other_ops=layer.output.elements)


@handles("up", "dropout", "id", "concat")
def _free(layer: Layer) -> LayerCost:
    return _FREE
