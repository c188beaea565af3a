"""``convcost import``: an ONNX model (or any spec) written as a readable chain-language spec."""

from __future__ import annotations

import textwrap

import click

from convcost.cli.base import EXIT_BAD_INPUT, EXIT_OK, WholeNumber, cli, parse_size
from convcost.errors import ConvcostError
from convcost.model.program import Program


@cli.command("import", short_help="Write ONNX models (or specs) as a readable spec file.")
@click.argument("models", nargs=-1, required=True, metavar="MODEL.onnx|SPEC_OR_FILE...")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the spec to FILE instead of standard output.")
@click.option("--size", callback=parse_size, metavar="HxW",
              help="Input HxW for graphs whose input size is dynamic (or to replace it).")
@click.option("--batch", type=WholeNumber(), default=1, show_default=True,
              help="Batch size for graphs whose batch dimension is dynamic.")
@click.pass_context
def import_(ctx: click.Context, models: tuple[str, ...], output: str | None,
            size: tuple[int, int] | None, batch: int) -> None:
    """Write MODEL.onnx (or spec models) as a readable chain-language spec file.

    The spec re-analyses to the same MACs, params, buffers, other ops and output shape:
    residual blocks, branches, splits and gates are recovered from the graph, identical
    consecutive blocks fold into *N, repeated blocks into let fragments, and each stage is
    marked by a comment naming the node of its first layer. A graph that is not
    series-parallel is an error naming the node where recovery failed. Inputs are read as
    'analyze' reads them (ONNX files need the onnx extra: pip install 'convcost[onnx]').
    """
    from convcost.analysis import Options, analyze_arguments
    from convcost.cli.outputs import overwritten_input, refusal
    from convcost.importers.spec_writer import SpecWriter, round_trip_problems

    analysis = analyze_arguments(models, Options(size=size, batch=batch))
    errors: list[ConvcostError] = list(analysis.errors)
    source = overwritten_input(output, [item.report.source for item in analysis.models])
    if output is not None and source is not None:
        _summary(errors, 0)
        click.echo(refusal(output, source), err=True)
        ctx.exit(EXIT_BAD_INPUT)
    writer = SpecWriter()
    written: list[tuple[Program, str]] = []
    for item in analysis.models:  # each on its own: one unwritable graph hides no other
        try:
            writer.add(item.program, _name(item.program))
        except ConvcostError as error:
            errors.append(error.with_traceback(None))  # keep no frames alive
            continue
        written.append((item.program, item.report.source))
    if written:
        origins = ", ".join(dict.fromkeys(origin for _, origin in written))
        # One comment line per ~94 characters: 38 sources made a 2,700-character header line.
        text = writer.text(textwrap.wrap(f"written by convcost import from {origins}", 94,
                                         break_long_words=False, break_on_hyphens=False))
        errors += round_trip_problems([program for program, _ in written], text)
        failure = _emit(text, output)
        if failure is not None:
            _summary(errors, 0)
            click.echo(failure, err=True)
            ctx.exit(EXIT_BAD_INPUT)
    _summary(errors, len(written))
    ctx.exit(EXIT_BAD_INPUT if errors else EXIT_OK)


def _name(program: Program) -> str:
    """A model name: a command-line chain (named by its text) becomes 'model'."""
    return "model" if "->" in program.name or "→" in program.name else program.name


def _emit(text: str, output: str | None) -> str | None:
    """Write ``text`` to standard output or ``output``; the reason it could not be written."""
    if output is None:
        click.echo(text, nl=False)
        return None
    try:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        return f"{output}: error: cannot write: {error.strerror or error}"
    return None


def _summary(errors: list[ConvcostError], count: int) -> None:
    """Every error to standard error, then a one-line summary when anything failed."""
    for error in errors:
        click.echo(str(error), err=True)
    if errors:
        click.echo(f"convcost: {count} model{'s' if count != 1 else ''} written; "
                   f"{len(errors)} error{'s' if len(errors) != 1 else ''}", err=True)
