"""Shared fixtures: a CLI runner and the JSON Schema validator every JSON output must pass."""

from __future__ import annotations

import sys

# Cache bytecode, pytest's assertion-rewritten test modules included, even where the
# environment says not to (PYTHONDONTWRITEBYTECODE, set on the dev VM): each xdist worker
# otherwise recompiles and rewrites every module, about 7 s of CPU per worker and run. Set
# before the imports below, so convcost's own modules are cached too.
sys.dont_write_bytecode = False

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from convcost.cli import cli
from convcost.cost.report import schema_text

# The suite runs the NumPy kernels: compiling the numba ones (the jit extra) takes seconds per
# process and dtype. The numba kernels' tests switch them on (jit_on), in one xdist group.
os.environ["CONVCOST_JIT"] = "0"

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def jit_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numba kernels switched on (the suite runs with them off, above)."""
    monkeypatch.setenv("CONVCOST_JIT", "1")


@pytest.fixture(scope="session")
def validate() -> Callable[[Any], None]:
    """Validate a parsed JSON document against the shipped ``convcost/1`` schema."""
    import jsonschema  # a test extra: never skipped

    schema = json.loads(schema_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    def check(document: Any) -> None:
        validator.validate(document)

    return check


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Invoke the CLI in-process with a fixed, colourless 120-column environment."""
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)

    def invoke(*args: str, input: str | bytes | None = None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)

    return invoke
