"""The ``convcost`` command line: parse options, call the library, render, map errors to exit
codes. Data goes to standard output; diagnostics go to standard error.

Exit codes: 0 success; 1 a check failed; 2 bad input or usage; 130 interrupted.

Each command lives in its own module, registered on the group by importing it here.
"""

from __future__ import annotations

import gc
import os
import sys

import click

from convcost.cli import (  # noqa: F401  (registers the commands)
    analyze,
    check,
    export,
    importer,
    machine,
    plot,
)
from convcost.cli.base import EXIT_INTERRUPTED, EXIT_OK, cli

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: exit codes, quiet broken pipes, no tracebacks for Ctrl-C."""
    # Analysis builds many small immutable values and no reference cycles: the cyclic
    # collector only costs time there (up to half of a large run). --bench turns it back on.
    gc.disable()
    try:
        code = cli.main(args=argv, prog_name="convcost", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("convcost: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except click.ClickException as error:
        error.show()
        code = error.exit_code
    except KeyboardInterrupt:
        click.echo("convcost: interrupted", err=True)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        code = EXIT_OK
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    _exit(code if isinstance(code, int) else EXIT_OK, argv is None)


def _exit(code: int, process: bool) -> None:
    """End with ``code``. As the console script (``process``), skip the interpreter's
    teardown: freeing every report object one by one costs about a tenth of a large run,
    and nothing is left to clean up once both streams are flushed."""
    if not process:
        sys.exit(code)
    try:
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: nothing more can be said anyway
        pass
    os._exit(code)


def _silence_stdout() -> None:
    """After the reader of our output went away (``| head``), drop the rest quietly."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
