"""``convcost check``: budgets, baselines and time limits for CI."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from convcost.analysis import Options
from convcost.cli.base import (
    CHECK_FORMATS,
    CONVENTIONS,
    EXIT_BAD_INPUT,
    EXIT_CHECK_FAILED,
    EXIT_OK,
    SPEC,
    analysis_options,
    analyze_specs,
    check_device_dtype,
    cli,
    device_option,
    emit_document,
    print_grids,
    quantity,
    report_errors,
    with_devices,
)

if TYPE_CHECKING:
    from convcost.roofline.devices import Device

def _time_budgets(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
                  ) -> tuple[tuple[Device, float], ...]:
    """--max-time DEVICE=SECONDS values as (profile, seconds); a later one for the same
    device wins."""
    from convcost.check import parse_time_budget
    from convcost.roofline.devices import DeviceError, resolve_device

    budgets: dict[str, tuple[Device, float]] = {}
    for text in value:
        try:
            spec, seconds = parse_time_budget(text)
            device = resolve_device(spec)
        except DeviceError as error:
            raise click.BadParameter(error.message) from None
        except ValueError as error:
            raise click.BadParameter(str(error)) from None
        budgets[device.id] = (device, seconds)
    return tuple(budgets.values())


@cli.command(epilog=CONVENTIONS)
@click.argument("specs", nargs=-1, required=True, type=SPEC, metavar="SPEC_OR_FILE...")
@click.option("--max-macs", callback=quantity(False), metavar="N",
              help="Fail when a model needs more MACs (SI suffixes: 4.2G, 600M).")
@click.option("--max-params", callback=quantity(False), metavar="N",
              help="Fail when a model has more parameters (e.g. 26M).")
@click.option("--max-peak-memory", callback=quantity(True), metavar="BYTES",
              help="Fail when peak activation memory is larger (e.g. 120MB, 1.5GiB).")
@click.option("--max-param-memory", callback=quantity(True), metavar="BYTES",
              help="Fail when parameter memory is larger (e.g. 100MiB).")
@click.option("--baseline", "baseline_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="JSON from an earlier 'convcost analyze --format json': fail when a model "
                   "grew beyond the tolerance.")
@click.option("--tolerance", default="0%", show_default=True, metavar="PCT",
              help="Growth allowed against --baseline: a percentage (1%, 2.5%) or a fraction "
                   "below 1 (0.01); a bare 15 is refused, write 15%.")
@click.option("--max-time", "max_times", multiple=True, callback=_time_budgets,
              metavar="DEVICE=SECONDS",
              help="Fail when a model's predicted (roofline) time on DEVICE is longer, e.g. "
                   "t4=5ms or local=0.02 (repeatable; DEVICE as for --device).")
@click.option("--all", "show_all", is_flag=True, help="List passing checks too in tables.")
@analysis_options(CHECK_FORMATS, "Verdict as a table, JSON, Markdown, or GitHub workflow "
                                 "annotations.")
@device_option
@click.pass_context
def check(ctx: click.Context, specs: tuple[str, ...], max_macs: int | None,
          max_params: int | None, max_peak_memory: int | None, max_param_memory: int | None,
          baseline_path: str | None, tolerance: str,
          max_times: tuple[tuple[Device, float], ...], show_all: bool,
          size: tuple[int, int] | None, batch: int, dtype: str, fmt: str,
          devices: tuple[Device, ...]) -> None:
    """Check models against budgets and a baseline, for CI.

    \b
    Exit codes: 0 every check passed; 1 a budget or baseline check failed;
    2 bad input or usage.
    \b
    Examples:
      convcost check specs/ --max-macs 4.2G --max-params 26M --max-peak-memory 1GB
      convcost analyze specs/ --format json > convcost-baseline.json
      convcost check specs/ --baseline convcost-baseline.json --tolerance 1%
      convcost check specs/ --max-time t4=5ms --max-time xeon-8480=20ms
    """
    from convcost import check as checks

    budgets = {key: value for key, value in (
        ("macs", max_macs), ("params", max_params), ("peak_activation_bytes", max_peak_memory),
        ("param_bytes", max_param_memory)) if value is not None}
    try:
        allowed = checks.parse_tolerance(tolerance)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--tolerance") from None
    if not budgets and not max_times and baseline_path is None:
        raise click.UsageError("nothing to check: give budgets (--max-macs, --max-params, "
                               "--max-peak-memory, --max-param-memory, --max-time) or "
                               "--baseline FILE")
    from convcost.roofline.apply import resolve_devices
    try:  # both resolved already; this only merges them (and refuses clashing ids)
        devices = resolve_devices([*devices, *(device for device, _ in max_times)])
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--max-time") from None
    check_device_dtype(devices, dtype)
    options = Options(size=size, batch=batch, dtype=dtype.lower())
    baseline = None
    if baseline_path is not None:
        try:
            baseline = checks.load_baseline(baseline_path)
        except checks.BaselineError as error:
            click.echo(f"convcost: error: {error.message}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        # Another configuration's totals are not comparable: a 4x regression at batch 4
        # against a batch-8 baseline would read as -50%.
        mismatch = baseline.mismatch(options)
        if mismatch is not None:
            click.echo(f"convcost: error: {mismatch}", err=True)
            ctx.exit(EXIT_BAD_INPUT)
    analysis = analyze_specs(specs, size, batch, dtype)
    with_devices(analysis, devices)
    verdict = checks.run_check(analysis.reports, budgets, baseline, baseline_name=baseline_path,
                               tolerance=allowed,
                               time_budgets={device.id: limit for device, limit in max_times}
                               ).with_errors(len(analysis.errors))
    fmt = fmt.lower()
    if fmt == "json":
        emit_document(analysis.reports, analysis.errors, configuration=options.to_json(),
                      check=verdict.to_json())
    elif fmt == "github":
        from convcost.render import github_annotations
        click.echo(github_annotations(verdict, analysis.errors), nl=False)
    else:
        from convcost import render
        grid = render.check_grid(verdict, show_all=show_all)
        if fmt == "markdown":
            click.echo(render.to_markdown(grid), nl=False)
        else:
            print_grids([grid])
    report_errors(analysis)
    ctx.exit(EXIT_BAD_INPUT if verdict.errors else EXIT_OK if verdict.passed else
             EXIT_CHECK_FAILED)


