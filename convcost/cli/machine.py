"""The machine and reference commands: ``calibrate``, ``devices`` and ``schema``."""

from __future__ import annotations

from typing import Any

import click

from convcost.cli.base import EXIT_BAD_INPUT, WholeNumber, cli, emit_json, print_grids


@cli.command(short_help="Measure this machine's matrix-multiply peak and bandwidth.")
@click.option("--dtype", "dtypes", multiple=True, default=("float32", "float64"),
              show_default=True, type=click.Choice(["float32", "float64", "float16"]),
              help="Element types to measure the matrix-multiply peak for (repeatable).")
@click.option("--threads", type=WholeNumber(maximum=None), metavar="N",
              help="BLAS threads (default: as configured).")
@click.option("--quick", is_flag=True, help="Smaller, faster measurements (less accurate).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"], case_sensitive=False),
              default="table", show_default=True, help="Output format.")
@click.option("--save", "save", is_flag=False, flag_value="", default=None, metavar="[FILE]",
              help="Also write this machine's device profile (measured peaks and bandwidth) "
                   "for '--device local'; default FILE: $CONVCOST_LOCAL_PROFILE or "
                   "~/.config/convcost/local.toml.")
@click.pass_context
def calibrate(ctx: click.Context, dtypes: tuple[str, ...], threads: int | None, quick: bool,
              fmt: str, save: str | None) -> None:
    """Measure this machine's matrix-multiply peak (GFLOP/s per dtype) and memory bandwidth.

    These are the roofs --bench compares achieved GFLOP/s against. Takes a few seconds.
    With --save, they become the 'local' device of --device.
    """
    from convcost.bench import machine

    with machine.blas_threads(threads):
        click.echo("convcost: calibrating (a few seconds)...", err=True)
        result = machine.calibrate(tuple(dict.fromkeys(dtypes)), quick=quick)
    if save is not None:
        _save_profile(ctx, result, save)
    if fmt.lower() == "json":
        from convcost.cost.report import document
        emit_json(document([], [], **result.to_json()))
        return
    from convcost import render
    print_grids([render.calibration_grid(result)])


def _save_profile(ctx: click.Context, calibration: Any, target: str) -> None:
    """Write the measured profile to ``target`` ('' = the local profile path), or exit 2."""
    from convcost.roofline.devices import DeviceError, local_profile_path
    from convcost.roofline.local import profile_from_calibration, save_profile

    try:
        path = save_profile(profile_from_calibration(calibration), target or None)
    except DeviceError as error:
        click.echo(f"convcost: error: cannot save the profile: {error.message}", err=True)
        ctx.exit(EXIT_BAD_INPUT)
    use = "--device local" if path == local_profile_path() else f"--device {path}"
    click.echo(f"convcost: saved this machine's profile to {path} (use it with {use})",
               err=True)


@cli.command(short_help="List the device profiles shipped for --device.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"], case_sensitive=False),
              default="table", show_default=True,
              help="Output format (JSON: a convcost/1 document with a 'devices' array).")
@click.option("--verbose", "-v", is_flag=True, help="Also print each profile's sources.")
def devices(fmt: str, verbose: bool) -> None:
    """List the device profiles shipped for --device: peak FLOP/s and memory bandwidth.

    --device also takes 'local' (saved by 'convcost calibrate --save') or a .toml file with
    the same keys (name, kind, bandwidth, memory_bytes, source, [peak] dtype = FLOP/s).
    """
    from convcost.roofline.devices import device_to_json, shipped_devices

    if fmt.lower() == "json":
        from convcost.cost.report import document
        emit_json(document([], [], devices=[device_to_json(device)
                                             for device in shipped_devices()]))
        return
    from convcost.roofline.tables import devices_grid
    print_grids([devices_grid(shipped_devices(), verbose=verbose)])


@cli.command()
def schema() -> None:
    """Print the JSON Schema of convcost's JSON output (convcost/1)."""
    from convcost.cost.report import schema_text
    click.echo(schema_text(), nl=False)


