"""``convcost export``: every model of the input as source code for another framework."""

from __future__ import annotations

import click

from convcost.cli.base import EXIT_BAD_INPUT, EXIT_OK, analyze_specs, cli, parse_size, report_errors


@cli.command()
@click.argument("specs", nargs=-1, required=True, metavar="SPEC_OR_FILE...")
@click.option("--to", "target", type=click.Choice(["torch"], case_sensitive=False), required=True,
              help="The framework to write: torch (a PyTorch module; torch is not needed to "
                   "export).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Write the source to FILE (default: standard output).")
@click.option("--size", callback=parse_size, metavar="HxW",
              help="Replace the spatial size of every input (e.g. 224x224).")
@click.pass_context
def export(ctx: click.Context, specs: tuple[str, ...], target: str, output: str | None,
           size: tuple[int, int] | None) -> None:
    """Write every model in SPEC_OR_FILE... as PyTorch source.

    The source defines an nn.Module class per model (one attribute per layer; concatenations,
    residual adds and gates spelled out in forward), MODELS = {name: class} and
    INPUT_SHAPES = {name: (C, H, W)}. Models with errors are reported and skipped; the others
    are still exported (exit 2).

    \b
    Example:
      convcost export examples/zoo/resnet18.convcost --to torch -o resnet18.py
    """
    from convcost.export import export_torch

    analysis = analyze_specs(specs, size, 1, "float32")
    report_errors(analysis)
    if analysis.errors:
        count = len(analysis.errors)
        click.echo(f"convcost: export skipped what failed above ({count} error"
                   f"{'s' if count != 1 else ''}); the other models are exported", err=True)
    if not analysis.models:
        click.echo("convcost: nothing to export", err=True)
        ctx.exit(EXIT_BAD_INPUT)
    exported = export_torch(analysis.programs, origin=", ".join(specs))
    if output is None:
        click.echo(exported.source, nl=False)
    else:
        try:
            with open(output, "w", encoding="utf-8") as stream:
                stream.write(exported.source)
        except OSError as error:
            click.echo(f"{output}: error: cannot write: {error.strerror or error}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        count = len(exported.classes)
        click.echo(f"convcost: wrote {count} model{'s' if count != 1 else ''} to {output}",
                   err=True)
    ctx.exit(EXIT_BAD_INPUT if analysis.errors else EXIT_OK)
