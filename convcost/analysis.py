"""The library's front door: spec text in, typed reports and located errors out."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import BinaryIO, NamedTuple

from convcost.cost.report import ModelReport, build_report
from convcost.errors import ConvcostError, Source, SpecError
from convcost.inputs import ONNX_SUFFIX, Input, collect
from convcost.lang import parse_source
from convcost.model.program import Program
from convcost.model.resolve import resolve


class Options(NamedTuple):
    """How to analyse: ``size`` replaces every input's HxW; ``batch`` samples of ``dtype``."""

    size: tuple[int, int] | None = None
    batch: int = 1
    dtype: str = "float32"

    def describe(self) -> str:
        """'batch 4, float16, size 112x112' (or 'inputs as written' without a size)."""
        size = f"size {self.size[0]}x{self.size[1]}" if self.size else "inputs as written"
        return f"batch {self.batch}, {self.dtype}, {size}"

    def to_json(self) -> dict[str, object]:
        """The ``configuration`` of a ``convcost/1`` document (``size`` [H, W] or null)."""
        return {"batch": self.batch, "dtype": self.dtype,
                "size": list(self.size) if self.size else None}


class Analyzed(NamedTuple):
    """One model: its program and the report costed from it (with measurements once
    benchmarked)."""

    program: Program
    report: ModelReport


class Analysis:
    """The models that resolved and the errors of everything that did not, in input order."""

    def __init__(self, errors: list[ConvcostError] | None = None) -> None:
        self.models: list[Analyzed] = []
        self.errors: list[ConvcostError] = errors if errors is not None else []
        #: Located warnings: inputs that analyse but look misread (e.g. channels first).
        self.warnings: list[ConvcostError] = []
        #: Inputs read: chains, files, standard input, and unreadable ones.
        self.sources = 0
        #: Whether any file, directory, pattern or standard input was among them (a run that
        #: reads files ends with a one-line summary).
        self.batch_input = False

    @property
    def count(self) -> int:
        """How many models were analysed."""
        return len(self.models)

    @property
    def reports(self) -> list[ModelReport]:
        """The reports of the models, in input order."""
        return [model.report for model in self.models]

    @property
    def programs(self) -> list[Program]:
        """The programs of the models, in input order."""
        return [model.program for model in self.models]

    def add_unreadable(self, errors: list[ConvcostError]) -> None:
        """Put the errors of arguments that could not be read first (each is a source, and
        a file's)."""
        self.errors[:0] = errors
        self.sources += len(errors)
        self.batch_input = self.batch_input or bool(errors)

    def extend(self, other: Analysis) -> None:
        self.models.extend(other.models)
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)
        self.sources += other.sources
        self.batch_input = self.batch_input or other.batch_input


def analyze_source(source: Source, options: Options = Options(), *,
                   bare_names: str = "line") -> Analysis:
    """Parse, resolve and cost every model of ``source``; one bad model never hides another."""
    parsed = parse_source(source, bare_names=bare_names)
    result = Analysis(errors=list(parsed.errors))
    result.warnings.extend(parsed.warnings)
    if not parsed.models and not parsed.errors:
        result.errors.append(SpecError("defines no models (expected lines like "
                                       "'name: 56x56x64 -> 3x3(64)')", source.name))
    for model in parsed.models:
        try:
            program = resolve(model, options.size)
        except SpecError as error:
            result.errors.append(error.detached())  # keep no frames alive
            continue
        report = build_report(program, source=source.name, spec=model.text,
                              batch=options.batch, dtype=options.dtype, line=model.span.line)
        result.models.append(Analyzed(program, report))
    return result


def analyze_text(text: str, options: Options = Options(), source_name: str = "<arg>") -> Analysis:
    """Analyse spec text given directly (bare chains are named by their text)."""
    return analyze_source(Source(source_name, text), options, bare_names="text")


def analyze_onnx(item: Input, options: Options = Options()) -> Analysis:
    """Lower and cost the ONNX model of ``item`` (named after its file)."""
    from convcost.importers.onnx import read_onnx  # only for ONNX inputs: start-up time

    result = Analysis()
    name = item.source.name
    stem = os.path.basename(name)
    stem = stem[:-len(ONNX_SUFFIX)] if stem.lower().endswith(ONNX_SUFFIX) else stem
    if not stem or stem.startswith("<"):
        stem = "onnx_model"
    try:
        program = read_onnx(item.onnx or b"", stem, size=options.size, batch=options.batch,
                            source=name)
    except ConvcostError as error:
        result.errors.append(error.with_traceback(None))  # keep no frames alive
        return result
    report = build_report(program, source=name, spec=f"ONNX model {os.path.basename(name)}",
                          batch=options.batch, dtype=options.dtype)
    result.models.append(Analyzed(program, report))
    return result


def analyze_inputs(inputs: list[Input], options: Options = Options()) -> Analysis:
    """Analyse every input in order."""
    total = Analysis()
    for item in inputs:
        if item.onnx is not None:
            total.extend(analyze_onnx(item, options))
            continue
        total.extend(analyze_source(item.source, options, bare_names=item.bare_names))
    total.sources = len(inputs)
    total.batch_input = read_from_files(inputs)
    return total


def read_from_files(inputs: Iterable[Input]) -> bool:
    """Whether any of ``inputs`` came from a file, a directory, a pattern or standard input
    (its bare chains are named by line) rather than the command line."""
    return any(item.bare_names != "text" for item in inputs)


def analyze_arguments(arguments: Iterable[str], options: Options = Options(),
                      stdin: BinaryIO | None = None) -> Analysis:
    """Analyse command-line style arguments: chains, files, directories, globs and ``-``.

    Unreadable arguments become errors in place; the others are still analysed.
    """
    inputs, errors = collect(list(arguments), stdin)
    analysis = analyze_inputs(inputs, options)
    analysis.add_unreadable(errors)
    return analysis
