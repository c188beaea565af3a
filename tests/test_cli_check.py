"""``convcost check`` never passes falsely (issue 11): one test per class that broke."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

Run = Callable[..., Result]
FORMATS = ("table", "markdown", "json", "github")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with specs/net.convcost: an unnamed chain and a named model."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "specs").mkdir()
    _write(tmp_path, "8x8x16 -> 1x1(16)\nnamed: 8x8x16 -> relu\n")
    return tmp_path


def _write(root: Path, text: str) -> None:
    (root / "specs" / "net.convcost").write_text(text)


def _baseline(run: Run, root: Path, *args: str) -> str:
    result = run("analyze", *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    (root / "baseline.json").write_text(result.stdout)
    return str(root / "baseline.json")


def _verdict(result: Result, fmt: str) -> str:
    """What a reader of ``fmt`` sees as the verdict."""
    if fmt == "json":
        check = json.loads(result.stdout)["check"]
        return "PASS" if check["passed"] else check["status"]
    if fmt == "github":
        word = result.stdout.strip().splitlines()[-1].rpartition(": ")[2]
        return {"passed": "PASS", "failed": "FAIL", "error": "ERROR"}[word]
    first = next(line for line in result.stdout.splitlines() if "convcost check:" in line)
    return first.rpartition(": ")[2].strip()


@pytest.mark.parametrize("spelled", ["./specs", "specs//", "{root}/specs",
                                     "./specs/net.convcost"])
def test_check_same_file_spelled_differently_is_the_same_model(
        run: Run, project: Path, spelled: str) -> None:
    baseline = _baseline(run, project, "specs/")
    _write(project, "8x8x16 -> 1x1(64)\nnamed: 8x8x16 -> relu\n")  # the unnamed one grew 4x
    result = run("check", spelled.format(root=project), "--baseline", baseline,
                 "--format", "json")
    assert result.exit_code == 1
    check = json.loads(result.stdout)["check"]
    assert check["added"] == [] and check["removed"] == [] and check["passed"] is False


def test_check_rename_is_flagged_in_every_format(run: Run, project: Path,
                                                 validate: Callable[[Any], None]) -> None:
    baseline = _baseline(run, project, "specs")
    _write(project, "8x8x16 -> 1x1(64)\nrenamed: 8x8x16 -> relu\n")
    outputs = {fmt: run("check", "specs", "--baseline", baseline, "--format", fmt)
               for fmt in FORMATS}
    assert all(result.exit_code == 1 for result in outputs.values())
    validate(json.loads(outputs["json"].stdout))
    assert json.loads(outputs["json"].stdout)["check"]["renamed"] == [
        {"from": "named", "to": "renamed", "source": os.path.join("specs", "net.convcost"),
         "line": 2}]
    assert "title=convcost model renamed::named is now renamed" in outputs["github"].stdout
    for fmt in ("table", "markdown"):
        assert "renamed: named -> renamed" in outputs[fmt].stdout


def test_check_configuration_mismatch_is_an_error_naming_both(run: Run, project: Path) -> None:
    baseline = _baseline(run, project, "specs", "--batch", "8")
    for args, now in [(("--batch", "2"), "batch 2, float32"),
                      (("--batch", "8", "--dtype", "float16"), "batch 8, float16"),
                      (("--batch", "8", "--size", "4x4"), "size 4x4")]:
        result = run("check", "specs", "--baseline", baseline, *args)
        assert result.exit_code == 2, args
        assert "batch 8, float32, inputs as written" in result.stderr and now in result.stderr
    assert run("check", "specs", "--baseline", baseline, "--batch", "8").exit_code == 0


def test_check_configuration_of_an_older_baseline_comes_from_its_models(
        run: Run, project: Path) -> None:
    baseline = _baseline(run, project, "specs", "--dtype", "int8")
    document = json.loads(Path(baseline).read_text())
    del document["configuration"]
    Path(baseline).write_text(json.dumps(document))
    result = run("check", "specs", "--baseline", baseline)
    assert result.exit_code == 2 and "batch 1, int8" in result.stderr


@pytest.mark.parametrize("tolerance", ["nan", "inf", "nan%", "inf%", "1e999%", "-1%", "15",
                                       "1", "1e-2", "lots"])
def test_check_refuses_tolerances_that_let_anything_through(
        run: Run, project: Path, tolerance: str) -> None:
    baseline = _baseline(run, project, "specs")
    result = run("check", "specs", "--baseline", baseline, "--tolerance", tolerance)
    assert result.exit_code == 2
    assert "--tolerance" in result.stderr


def test_check_tolerance_json_is_finite_and_exact(run: Run, project: Path,
                                                  validate: Callable[[Any], None]) -> None:
    baseline = _baseline(run, project, "specs")
    result = run("check", "specs", "--baseline", baseline, "--tolerance", "2.5%",
                 "--format", "json")
    assert result.exit_code == 0
    document = json.loads(result.stdout)  # strict: NaN or Infinity would not parse as JSON
    validate(document)
    assert document["check"]["tolerance"] == 0.025
    assert document["configuration"] == {"batch": 1, "dtype": "float32", "size": None}


@pytest.mark.parametrize("total", ["NaN", "1e400", "2.5", "-1", "99999999999999999999999",
                                   '"12"'])
def test_check_refuses_malformed_baseline_totals(run: Run, project: Path, total: str) -> None:
    baseline = Path(_baseline(run, project, "specs"))
    document = json.loads(baseline.read_text())
    document["models"][0]["totals"]["macs"] = "@TOTAL@"
    baseline.write_text(json.dumps(document).replace('"@TOTAL@"', total))
    result = run("check", "specs", "--baseline", str(baseline))
    assert result.exit_code == 2
    assert "totals 'macs'" in result.stderr and "Traceback" not in result.stderr


def test_check_hostile_baselines_exit_2_without_a_traceback(run: Run, project: Path) -> None:
    baseline = Path(_baseline(run, project, "specs"))
    document = json.loads(baseline.read_text())
    document["models"][0]["source"] = ["a", "list"]
    listed = project / "listed.json"
    listed.write_text(json.dumps(document))
    deep = project / "deep.json"
    deep.write_text('{"schema": "convcost/1", "models": ' + "[" * 100_000 + "]" * 100_000 + "}")
    cases = [(listed, "'source' must be a string, not a list"), (deep, "nested too deeply")]
    if os.path.exists("/dev/zero"):
        cases.append((Path("/dev/zero"), "is a device"))
    if hasattr(os, "mkfifo"):
        os.mkfifo(project / "fifo.json")
        cases.append((project / "fifo.json", "is not JSON"))
    for path, message in cases:
        result = run("check", "specs", "--baseline", str(path))
        assert result.exit_code == 2, path
        assert message in result.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_check_with_a_spec_error_never_says_pass(run: Run, project: Path, fmt: str,
                                                 validate: Callable[[Any], None]) -> None:
    (project / "specs" / "bad.convcost").write_text("bad: 8 -> bogus\n")
    result = run("check", "specs", "--max-macs", "1G", "--format", fmt)
    assert result.exit_code == 2
    assert _verdict(result, fmt) == "ERROR"
    if fmt == "json":
        check = json.loads(result.stdout)["check"]
        assert check["passed"] is False and check["errors"] == 1
        validate(json.loads(result.stdout))


@pytest.mark.parametrize("fmt", FORMATS)
def test_check_failures_say_fail_in_every_format(run: Run, project: Path, fmt: str) -> None:
    result = run("check", "specs", "--max-macs", "1", "--format", fmt)
    assert result.exit_code == 1
    assert _verdict(result, fmt) == "FAIL"


def test_check_unreadable_subdirectory_is_an_error_not_removed(
        run: Run, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unreadable = project / "specs" / "sub"
    unreadable.mkdir()
    (unreadable / "deep.convcost").write_text("deep: 8 -> relu\n")
    baseline = _baseline(run, project, "specs")
    # Simulated (tests may run as root, who reads every directory): listing sub/ fails.
    real = os.scandir

    def scandir(path: Any = ".") -> Any:
        if os.path.abspath(os.fsdecode(path)) == str(unreadable):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = run("check", "specs", "--baseline", baseline, "--format", "json")
    assert result.exit_code == 2
    assert "cannot read directory" in result.stderr and "Permission denied" in result.stderr
    assert json.loads(result.stdout)["check"]["status"] == "ERROR"


# -- compare: models of the same name in several files ---------------------------------------


@pytest.fixture
def twins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.convcost").write_text("net: 8x8x16 -> 1x1(16)\n")
    (tmp_path / "b.convcost").write_text("net: 8x8x16 -> 1x1(32)\n")
    return "a.convcost", "b.convcost"


def test_compare_qualifies_duplicate_names_by_source(run: Run, twins: tuple[str, str]) -> None:
    table = run("compare", *twins).stdout
    assert "a.convcost:net" in table and "b.convcost:net" in table
    csv = run("compare", *twins, "--format", "csv").stdout.splitlines()
    assert [row.split(",")[0] for row in csv[1:]] == ["a.convcost:net", "b.convcost:net"]


def test_compare_refuses_an_ambiguous_baseline_name(run: Run, twins: tuple[str, str]) -> None:
    result = run("compare", *twins, "--baseline", "net")
    assert result.exit_code == 2
    assert "ambiguous" in result.stderr and "'b.convcost:net'" in result.stderr
    chosen = run("compare", *twins, "--baseline", "b.convcost:net", "--format", "json")
    assert chosen.exit_code == 0
    assert json.loads(chosen.stdout)["comparison"]["baseline"] == "net"
    assert "compared with b.convcost:net" in run("compare", *twins, "--baseline",
                                                 "b.convcost:net").stdout


def test_model_labels_stay_unique() -> None:
    from convcost.analysis import analyze_text
    from convcost.compare import model_labels

    models = [*analyze_text("x: 8 -> relu\ny: 8 -> relu").reports,
              *analyze_text("x: 8 -> relu", source_name="f").reports]
    assert model_labels(models) == ["<arg>:x", "y", "f:x"]
    same = [models[0], models[0]._replace(line=5)]
    assert model_labels(same) == ["<arg>:1:x", "<arg>:5:x"]
