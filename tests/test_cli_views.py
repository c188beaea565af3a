"""The table options of ``analyze`` (--depth, --top, --sort, --summary) and table width."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
from click.testing import Result

from tests.conftest import EXAMPLES, ROOT

Run = Callable[..., Result]
RESNET = str(EXAMPLES / "resnet50.convcost")


def test_depth_one_shows_blocks(run: Run) -> None:
    result = run("analyze", RESNET, "--depth", "1")
    assert result.exit_code == 0
    assert "residual (11 layers)" in result.stdout and "5.body.1" not in result.stdout
    assert "--depth 1: 174 layers in 38 rows" in result.stdout
    assert "4.09G" in result.stdout  # the footer keeps the model's totals


def test_depth_applies_to_csv_and_markdown_but_not_json(run: Run) -> None:
    rows = list(csv.DictReader(io.StringIO(run("analyze", RESNET, "--depth", "1",
                                               "--format", "csv").stdout)))
    assert len(rows) == 38 and sum(int(row["macs"]) for row in rows) == 4_089_184_256
    assert rows[4]["kind"] == "block"
    markdown = run("analyze", RESNET, "--depth", "1", "--format", "markdown").stdout
    assert "residual (11 layers)" in markdown
    document = json.loads(run("analyze", RESNET, "--depth", "1", "--format", "json").stdout)
    assert len(document["models"][0]["layers"]) == 174


def test_top_and_sort(run: Run) -> None:
    result = run("analyze", RESNET, "--top", "3")
    assert result.exit_code == 0
    assert "3 of 174 rows, sorted by MACs" in result.stdout
    params = run("analyze", RESNET, "--top", "1", "--sort", "params").stdout
    assert "3x3(512" in params and "2.36M" in params
    refused = run("analyze", RESNET, "--sort", "time")
    assert refused.exit_code == 2 and "--bench" in refused.output


def test_summary_for_one_and_many(run: Run) -> None:
    one = run("analyze", RESNET, "--summary")
    assert one.exit_code == 0 and "1 model (batch 1, float32)" in one.stdout
    assert len([line for line in one.stdout.splitlines() if "resnet50" in line]) == 1
    many = run("analyze", str(EXAMPLES), "--summary", "--format", "csv")
    names = [row["model"] for row in csv.DictReader(io.StringIO(many.stdout))]
    assert any(name.endswith("bottleneck.convcost:direct") for name in names)
    assert len(names) == len(set(names))


def test_large_tables_point_at_the_views(run: Run) -> None:
    chain = "8 -> " + " -> ".join(["relu"] * 600)
    assert "--depth 1, --top N or --summary" in run("analyze", chain).stdout


def _piped(*args: str, env: dict[str, str]) -> str:
    full = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    return subprocess.run([sys.executable, "-m", "convcost", *args], capture_output=True,
                          text=True, env={**full, **env}, cwd=ROOT, timeout=60).stdout


@pytest.mark.parametrize(("columns", "width"), [(None, 100), ("80", 80), ("150", 150)])
def test_piped_tables_use_columns_or_100_without_trailing_spaces(columns: str | None,
                                                                 width: int) -> None:
    text = _piped("analyze", RESNET, env={} if columns is None else {"COLUMNS": columns})
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert all(line == line.rstrip() for line in lines)
    if width >= 100:
        assert max(len(line) for line in lines) > 80


def test_summary_top_and_sort_pick_the_heaviest_models(run: Run) -> None:
    result = run("analyze", str(EXAMPLES), "--summary", "--top", "2", "--sort", "params")
    assert result.exit_code == 0
    assert len(result.stdout.split("\n\n")[1].splitlines()) == 4  # header, rule, 2 rows
    assert re.search(r"2 of \d+ models, by params", result.stdout)
    by_params = list(csv.DictReader(io.StringIO(run(
        "analyze", str(EXAMPLES), "--summary", "--sort", "params", "--format", "csv").stdout)))
    params = [int(row["params"]) for row in by_params]
    assert params == sorted(params, reverse=True) and len(params) > 3
    csv_rows = list(csv.DictReader(io.StringIO(run(
        "analyze", str(EXAMPLES), "--summary", "--top", "3", "--format", "csv").stdout)))
    macs = [int(row["macs"]) for row in csv_rows]
    assert len(macs) == 3 and macs == sorted(macs, reverse=True)


def test_top_with_a_device_counts_memory_bound_rows_of_those_shown(run: Run) -> None:
    # '4 of 4 layers memory-bound' under --top 4 read as if ResNet-50 had 4 layers.
    result = run("analyze", RESNET, "--top", "4", "--device", "t4")
    assert result.exit_code == 0
    assert re.search(r"\d of the 4\s+layers\s+shown\s+memory-bound", result.stdout)
