"""The library's front door: spec text in, reports and located errors out."""

from __future__ import annotations

from typing import NamedTuple

from convcost.errors import SpecError, Source
from convcost.inputs import Input
from convcost.net import Network
from convcost.report import ModelReport, build_report
from convcost.shapes import resolve
from convcost.spec import parse_source


class Options(NamedTuple):
    """How to analyse: ``size`` replaces every input's HxW; ``batch`` samples of ``dtype``."""

    size: tuple[int, int] | None = None
    batch: int = 1
    dtype: str = "float32"


class Analysis:
    """Reports of the models that resolved, errors of everything that did not, in input order."""

    def __init__(self, errors: list[SpecError] | None = None) -> None:
        self.models: list[ModelReport] = []
        self.networks: list[Network] = []
        self.errors: list[SpecError] = errors if errors is not None else []

    def extend(self, other: Analysis) -> None:
        self.models.extend(other.models)
        self.networks.extend(other.networks)
        self.errors.extend(other.errors)


def analyze_source(source: Source, options: Options = Options(), *,
                   bare_names: str = "line") -> Analysis:
    """Parse, resolve and cost every model of ``source``; one bad model never hides another."""
    parsed = parse_source(source, bare_names=bare_names)
    result = Analysis(errors=list(parsed.errors))
    if not parsed.models and not parsed.errors:
        result.errors.append(SpecError("defines no models (expected lines like "
                                       "'name: 56x56x64 -> 3x3(64)')", source.name))
    for model in parsed.models:
        try:
            network = resolve(model, options.size)
        except SpecError as error:
            result.errors.append(error)
            continue
        result.networks.append(network)
        result.models.append(build_report(network, source=source.name, spec=model.text,
                                          batch=options.batch, dtype=options.dtype,
                                          line=model.span.line))
    return result


def analyze_text(text: str, options: Options = Options(), source_name: str = "<arg>") -> Analysis:
    """Analyse spec text given directly (bare chains are named by their text)."""
    return analyze_source(Source(source_name, text), options, bare_names="text")


def analyze_inputs(inputs: list[Input], options: Options = Options()) -> Analysis:
    """Analyse every input in order."""
    total = Analysis()
    for item in inputs:
        total.extend(analyze_source(item.source, options, bare_names=item.bare_names))
    return total
