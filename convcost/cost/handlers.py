"""The cost model: one handler per step kind, in a registry (like fvcore's op handles).

The counting conventions are :data:`CONVENTIONS` (per sample; the report multiplies by the
batch); each handler's docstring or code states its part. A kind without a handler raises
:class:`UnsupportedStep`; it is never silently costed as 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from convcost.lang.vocab import ACTIVATION_KINDS, ALIAS_KINDS, NORM_KINDS
from convcost.model.program import Step

#: The counting conventions, as ``--help`` prints them: the one statement of them in the code.
CONVENTIONS = """\
Counting conventions:
  MACs       multiply-accumulates of conv, deconv and fc weights only
             (deconv counts input positions); FLOPs = 2 x MACs
  other ops  element-wise work, never mixed into MACs: bias add 1 per
             output element, bn 2, activation 1, prelu and scale 1, gate
             multiply 1, ln/gn/instancenorm 5 (4 without affine), pooling
             KhxKw per output element, gap 1 per input element, residual
             add 1; up, dropout, droppath, id, slice, shuffle and concat 0
  params     weights, biases, bn/norm gamma and beta, prelu slopes, layer
             scale factors (bn running stats are buffers)
  memory     parameter bytes, per-layer output bytes, peak live activation
             bytes in execution order, traffic (input+weights+output bytes)
             and arithmetic intensity (FLOPs per traffic byte)
"""


class StepCost(NamedTuple):
    """Exact per-sample counts of one step."""

    macs: int = 0
    other_ops: int = 0
    params: int = 0
    buffers: int = 0


class UnsupportedStep(LookupError):
    """A step kind with no cost handler (a bug in convcost, never a silent zero)."""


Handler = Callable[[Step], StepCost]
HANDLERS: dict[str, Handler] = {}
_FREE = StepCost()


def handles(*kinds: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the cost handler of ``kinds``."""
    def register(function: Handler) -> Handler:
        for kind in kinds:
            HANDLERS[kind] = function
        return function
    return register


def step_cost(step: Step) -> StepCost:
    """The exact per-sample cost of ``step``."""
    handler = HANDLERS.get(step.kind)
    if handler is None:
        raise UnsupportedStep(f"no cost handler for step kind '{step.kind}'")
    return handler(step)


def _weights(step: Step) -> int:
    kh, kw = step.kernel_hw
    return kh * kw * (step.input.c // step.groups) * step.output.c


@handles("conv")
def _conv(step: Step) -> StepCost:
    weights = _weights(step)
    out = step.output
    bias = out.c if step.bias else 0
    return StepCost(macs=weights * out.h * out.w, other_ops=out.elements if bias else 0,
                     params=weights + bias)


@handles("deconv")
def _deconv(step: Step) -> StepCost:
    weights = _weights(step)
    bias = step.output.c if step.bias else 0
    return StepCost(macs=weights * step.input.h * step.input.w,
                     other_ops=step.output.elements if bias else 0, params=weights + bias)


@handles("fc")
def _fc(step: Step) -> StepCost:
    weights = step.input.elements * step.output.c
    bias = step.output.c if step.bias else 0
    return StepCost(macs=weights, other_ops=bias, params=weights + bias)


@handles("maxpool", "avgpool")
def _pool(step: Step) -> StepCost:
    kh, kw = step.kernel_hw
    return StepCost(other_ops=kh * kw * step.output.elements)


@handles("gap")
def _gap(step: Step) -> StepCost:
    return StepCost(other_ops=step.input.elements)


@handles("bn")
def _bn(step: Step) -> StepCost:
    channels = step.output.c
    return StepCost(other_ops=2 * step.output.elements, params=2 * channels,
                     buffers=2 * channels)


@handles(*(ACTIVATION_KINDS - {"prelu"}), "add", "mul")
def _elementwise(step: Step) -> StepCost:
    return StepCost(other_ops=step.output.elements)


@handles("prelu", "scale")
def _per_channel(step: Step) -> StepCost:
    """PReLU's slopes and layer scale's factors: one learnable value per channel."""
    return StepCost(other_ops=step.output.elements, params=step.output.c)


@handles(*NORM_KINDS)
def _norm(step: Step) -> StepCost:
    """fvcore's convention: 5 ops per element with an affine scale and shift, 4 without."""
    affine = step.affine
    return StepCost(other_ops=(5 if affine else 4) * step.output.elements,
                    params=2 * step.output.c if affine else 0)


@handles("up", "concat", "shuffle", *ALIAS_KINDS)
def _free(step: Step) -> StepCost:
    return _FREE
