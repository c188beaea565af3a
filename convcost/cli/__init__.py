"""The ``convcost`` command line: parse options, call the library, render, map errors to exit
codes. Data goes to standard output; diagnostics go to standard error.

Exit codes: 0 success; 1 a check failed; 2 bad input or usage; 130 interrupted. They hold
whatever the reader of the output does (``| head -1``, ``| true``, a closed or full stdout).

Each command lives in its own module, registered on the group when the module is imported:
``analyze`` here, the others when their command is first looked up (``base._Commands``).
"""

from __future__ import annotations

import os
import sys

try:  # Ctrl-C while the modules load (a second or so on a cold start) ends quietly too
    import gc

    import click

    from convcost.cli import analyze  # noqa: F401  (registers analyze and compare)
    from convcost.cli.base import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_OK, cli
    from convcost.cli.terminal import drop_output, prepare_environment, prepare_streams
    from convcost.inputs import mark_specs
except KeyboardInterrupt:
    from convcost.errors import interrupted_while_starting

    interrupted_while_starting()

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: exit codes, quiet broken pipes, no tracebacks for Ctrl-C,
    closed or full streams, odd terminals and encodings."""
    # Analysis builds many small immutable values and no reference cycles: the cyclic
    # collector only costs time there (up to half of a large run). --bench turns it back on;
    # a caller in the same process (argv given) gets it back as it was (see _exit).
    collecting = gc.isenabled()
    gc.disable()
    code: object = EXIT_OK
    try:
        prepare_environment(os.environ)
        problem = prepare_streams()
        if problem is not None:
            click.echo(f"convcost: {problem}", err=True)
            if collecting:
                gc.enable()
            _exit(EXIT_BAD_INPUT, argv is None)
        args = mark_specs(sys.argv[1:] if argv is None else list(argv))
        code = cli.main(args=args, prog_name="convcost", standalone_mode=False)
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
        # The reader went away (``| head``): the rest is not wanted, and the exit code stays
        # the one the run earned; diagnostics on stderr are already out.
        _silence_stdout()
        code = EXIT_OK
    except OSError as error:  # stdout closed or full (/dev/full): say so, never a traceback
        code = _output_failed(error)
    except RecursionError:
        click.echo("convcost: error: input nested too deeply to process", err=True)
        code = EXIT_BAD_INPUT
    except MemoryError:
        click.echo("convcost: error: out of memory; analyse fewer or smaller models", err=True)
        code = EXIT_BAD_INPUT
    except Exception as error:  # a bug in convcost: said plainly, traceback on request
        if os.environ.get("CONVCOST_TRACEBACK"):
            raise
        click.echo(f"convcost: internal error: {type(error).__name__}: {error}; this is a bug "
                   f"in convcost (set CONVCOST_TRACEBACK=1 to see where)", err=True)
        code = EXIT_BAD_INPUT
    code = _flush(code)
    if collecting:
        gc.enable()
    _exit(code if isinstance(code, int) else EXIT_OK, argv is None)


def _flush(code: object) -> object:
    """Flush stdout; a reader gone is quiet, a full or closed stream is an error."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except (OSError, ValueError) as error:
        return _output_failed(error)
    return code


def _output_failed(error: OSError | ValueError) -> int:
    """Standard output is closed or full: drop the rest and say so (exit 2)."""
    _silence_stdout()
    reason = getattr(error, "strerror", None) or error
    click.echo(f"convcost: cannot write the output: {reason}", err=True)
    return EXIT_BAD_INPUT


def _exit(code: int, process: bool) -> None:
    """End with ``code``. As the console script (``process``), skip the interpreter's
    teardown: freeing every report object one by one costs about a tenth of a large run,
    and nothing is left to clean up once both streams are flushed."""
    if not process:
        sys.exit(code)
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: nothing more can be said anyway
        pass
    os._exit(code)


def _silence_stdout() -> None:
    """After the reader of our output went away (``| head``), drop the rest quietly."""
    try:
        drop_output(sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no stdout descriptor at all
        pass
