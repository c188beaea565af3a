"""The command line, end to end through click's CliRunner (and a few real subprocesses)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from convcost.inputs import source_path
from tests.conftest import EXAMPLES, ROOT

Run = Callable[..., Result]
SEED = ("256 -> 4x4(256)", "256 -> 1x1(64) -> 4x4(256)")


def _json(result: Result) -> Any:
    return json.loads(result.stdout)


# -- compare ----------------------------------------------------------------------------------


def test_compare_seed_json_has_the_exact_counts(run: Run, validate: Callable[[Any], None]) -> None:
    result = run("compare", *SEED, "--format", "json")
    assert result.exit_code == 0
    document = _json(result)
    validate(document)
    totals = [model["totals"] for model in document["models"]]
    assert [t["macs"] for t in totals] == [1_048_576, 278_528]
    assert [t["params"] for t in totals] == [1_048_832, 278_848]
    assert [t["flops"] for t in totals] == [2_097_152, 557_056]
    assert document["comparison"]["baseline"] == SEED[0]
    ratios = document["comparison"]["models"][1]["ratios"]
    assert ratios["macs"] == 278_528 / 1_048_576
    assert result.stderr == ""


def test_compare_table_says_it_in_words(run: Run) -> None:
    result = run("compare", *SEED)
    assert result.exit_code == 0
    assert "3.76x fewer" in result.stdout
    words = " ".join(result.stdout.split())  # notes wrap at the terminal width
    assert "(278,528 vs 1,048,576 MACs; exactly 64/17)" in words
    assert "3.76x fewer MACs, 3.76x fewer params, 1.60x less peak memory" in words
    assert "\x1b[" not in result.stdout


def test_compare_a_file_compares_its_own_models(run: Run) -> None:
    result = run("compare", str(EXAMPLES / "bottleneck.convcost"), "--format", "json")
    document = _json(result)
    assert [model["name"] for model in document["models"]] == ["direct", "bottleneck"]
    assert document["comparison"]["baseline"] == "direct"


def test_compare_with_a_named_baseline(run: Run) -> None:
    result = run("compare", str(EXAMPLES / "bottleneck.convcost"), "--baseline", "bottleneck")
    assert result.exit_code == 0
    assert "3.76x more" in result.stdout


def test_compare_unknown_baseline_is_a_usage_error(run: Run) -> None:
    result = run("compare", *SEED, "--baseline", "nope")
    assert result.exit_code == 2
    assert "--baseline 'nope' names no model" in result.stderr


def test_compare_needs_two_models(run: Run) -> None:
    result = run("compare", SEED[0])
    assert result.exit_code == 2
    assert "compare needs at least two models" in result.stderr


def test_compare_markdown_and_csv(run: Run) -> None:
    markdown = run("compare", *SEED, "--format", "markdown").stdout
    assert "| model | MACs |" in markdown and "| ---: |" in markdown
    assert "3.76x fewer" in markdown
    rows = run("compare", *SEED, "--format", "csv").stdout.splitlines()
    assert rows[0].startswith("model,macs,flops,")
    assert rows[2].startswith('256 -> 1x1(64) -> 4x4(256),278528,557056,')


def test_fc_equals_a_full_size_conv_until_the_input_grows(run: Run) -> None:
    path = str(EXAMPLES / "fc_vs_conv.convcost")
    same = _json(run("compare", path, "--format", "json"))["models"]
    assert same[0]["totals"]["macs"] == same[1]["totals"]["macs"] == 102_760_448
    assert same[0]["totals"]["params"] == same[1]["totals"]["params"]
    grown = {m["name"]: m for m in _json(run("compare", path, "--size", "14x14",
                                              "--format", "json"))["models"]}
    assert grown["conv"]["output"] == [8, 8, 4096]
    assert grown["conv"]["totals"]["params"] == same[1]["totals"]["params"]
    assert grown["fc"]["totals"]["params"] == 14 * 14 * 512 * 4096 + 4096


# -- analyze ----------------------------------------------------------------------------------


def test_analyze_table_lists_layers_and_totals(run: Run) -> None:
    result = run("analyze", "56x56x64 -> 3x3(64, s=2) -> relu")
    assert result.exit_code == 0
    out = result.stdout
    assert "3x3(64, s=2)" in out and "28x28x64" in out
    assert "MACs 28,901,376" in out
    assert "100.0%" in out


def test_analyze_json_validates_and_has_layers(run: Run, validate: Callable[[Any], None]) -> None:
    result = run("analyze", str(EXAMPLES / "resnet50.convcost"), "--format", "json")
    document = _json(result)
    validate(document)
    model = document["models"][0]
    assert model["totals"]["macs"] == 4_089_184_256
    assert model["totals"]["params"] == 25_557_032
    assert model["output"] == [1, 1, 1000]
    assert sum(layer["macs"] for layer in model["layers"]) == model["totals"]["macs"]


def test_analyze_options_batch_dtype_size(run: Run) -> None:
    document = _json(run("analyze", "8x8x4 -> 3x3(8)", "--batch", "3", "--dtype", "float16",
                         "--size", "16x10", "--format", "json"))
    model = document["models"][0]
    assert model["input"] == [16, 10, 4] and model["batch"] == 3 and model["dtype"] == "float16"
    assert model["totals"]["macs"] == 3 * 9 * 4 * 8 * 16 * 10
    assert model["totals"]["param_bytes"] == (9 * 4 * 8 + 8) * 2


def test_analyze_csv_keeps_exact_integers(run: Run) -> None:
    rows = run("analyze", "256 -> 1x1(64) -> 4x4(256)", "--format", "csv").stdout.splitlines()
    assert rows[0].split(",")[:8] == ["model", "index", "path", "kind", "layer", "input",
                                      "output", "macs"]
    assert ",262144," in rows[2]


def test_analyze_markdown(run: Run) -> None:
    out = run("analyze", "8x8x4 -> 3x3(8)", "--format", "markdown").stdout
    assert out.startswith("### 8x8x4 -> 3x3(8)")
    assert "| 1 | 3x3(8) | 8x8x8 |" in out


def test_analyze_reads_standard_input(run: Run) -> None:
    result = run("analyze", "-", "--format", "json", input="a: 8 -> relu\nb: 8 -> 1x1(4)\n")
    assert [m["name"] for m in _json(result)["models"]] == ["a", "b"]
    assert [m["source"] for m in _json(result)["models"]] == ["<stdin>", "<stdin>"]


# -- errors and exit codes --------------------------------------------------------------------


def test_bad_spec_exit_2_with_caret_and_json_errors(run: Run, validate: Callable[[Any], None]
                                                    ) -> None:
    result = run("analyze", "8 -> relu", "8 -> bogus", "--format", "json")
    assert result.exit_code == 2
    document = _json(result)
    validate(document)
    assert [m["name"] for m in document["models"]] == ["8 -> relu"]
    assert document["errors"] == [{"source": "<arg>", "line": 1, "column": 6, "kind": "spec",
                                   "message": "unknown layer 'bogus'; expected a layer such as "
                                   "3x3(64), 1x7(192), fc(1000), maxpool3x3(s=2), avgpool2x2, "
                                   "gap, deconv4x4(64, s=2), up2, bn, relu, [A | B], res[A], "
                                   "(A)*2 or $name"}]
    assert "  8 -> bogus\n       ^^^^^\n" in result.stderr
    assert "Traceback" not in result.stderr


def test_one_bad_file_does_not_hide_the_others(run: Run, tmp_path: Path) -> None:
    (tmp_path / "good.convcost").write_text("a: 8 -> relu\n")
    (tmp_path / "bad.convcost").write_text("x: 8 -> relu\ny: 8 -> 3x3(4, g=3)\n")
    (tmp_path / "latin1.convcost").write_bytes(b"z: 8 -> relu # caf\xe9\n")
    result = run("analyze", str(tmp_path), "--format", "json")
    assert result.exit_code == 2
    document = _json(result)
    assert sorted(m["name"] for m in document["models"]) == ["a", "x"]
    located = sorted((Path(e["source"]).name, e["line"], e["column"]) for e in document["errors"])
    assert located == [("bad.convcost", 2, 9), ("latin1.convcost", 1, 19)]
    assert "2 models analysed from 3 sources; 2 with errors" in result.stderr


def test_missing_file_is_reported(run: Run) -> None:
    result = run("analyze", "no/such/file.convcost")
    assert result.exit_code == 2
    assert "no/such/file.convcost: error: no such file: 'no/such/file.convcost'" in result.stderr


def test_usage_errors_exit_2(run: Run) -> None:
    assert run("analyze").exit_code == 2
    assert run("analyze", "8 -> relu", "--size", "0x3").exit_code == 2
    assert run("analyze", "8 -> relu", "--format", "yaml").exit_code == 2


# -- check ------------------------------------------------------------------------------------


def _grow(tmp_path: Path, percent: int) -> tuple[Path, Path]:
    """A spec dir and a baseline, then the spec's second conv widened by ``percent``%."""
    specs = tmp_path / "specs"
    specs.mkdir()
    spec = specs / "net.convcost"
    spec.write_text("net: 32x32x100 -> 1x1(100)\nsteady: 8 -> relu\n")
    return specs, spec


def test_check_baseline_growth_against_tolerance(run: Run, tmp_path: Path,
                                                 validate: Callable[[Any], None]) -> None:
    specs, spec = _grow(tmp_path, 5)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(run("analyze", str(specs), "--format", "json").stdout)
    spec.write_text("net: 32x32x100 -> 1x1(105)\nsteady: 8 -> relu\n")  # 5% more MACs
    failed = run("check", str(specs), "--baseline", str(baseline), "--tolerance", "1%")
    assert failed.exit_code == 1
    assert "FAIL net: MACs grew 5.00% (10,240,000 -> 10,752,000), beyond the tolerance of 1%" \
        in failed.stdout
    passed = run("check", str(specs), "--baseline", str(baseline), "--tolerance", "10%",
                 "--format", "json")
    assert passed.exit_code == 0
    document = _json(passed)
    validate(document)
    assert document["check"]["passed"] is True


def test_check_reports_added_and_removed_models(run: Run, tmp_path: Path) -> None:
    specs, spec = _grow(tmp_path, 0)
    baseline = tmp_path / "baseline.json"
    baseline.write_text(run("analyze", str(specs), "--format", "json").stdout)
    spec.write_text("net: 32x32x100 -> 1x1(100)\n\nnew: 8 -> relu\n")  # not at steady's line
    document = _json(run("check", str(specs), "--baseline", str(baseline), "--format", "json"))
    assert document["check"]["added"] == ["new"]
    assert document["check"]["removed"] == ["steady"]
    github = run("check", str(specs), "--baseline", str(baseline), "--format", "github").stdout
    assert "::warning title=convcost model added::new is not in the baseline" in github
    assert "::warning title=convcost model removed::steady is in the baseline" in github


def test_check_budgets_and_github_annotations(run: Run) -> None:
    path = str(EXAMPLES / "resnet50.convcost")
    assert run("check", path, "--max-macs", "4.2G", "--max-params", "26M",
               "--max-peak-memory", "120MB").exit_code == 0
    result = run("check", path, "--max-macs", "4G", "--format", "github")
    assert result.exit_code == 1
    assert result.stdout.startswith(
        f"::error file={source_path(path)},line=41,title=convcost budget::resnet50: MACs 4,089,184,256 over "
        f"the budget of 4,000,000,000\n")


def test_check_github_annotates_spec_errors(run: Run, tmp_path: Path) -> None:
    spec = tmp_path / "bad.convcost"
    spec.write_text("net: 8 -> bogus\n")
    result = run("check", str(spec), "--max-macs", "1G", "--format", "github")
    assert result.exit_code == 2
    assert result.stdout.startswith(f"::error file={source_path(str(spec))},line=1,col=11,title=convcost spec "
                                    f"error::unknown layer 'bogus'")


def test_check_needs_something_to_check(run: Run) -> None:
    result = run("check", "8 -> relu")
    assert result.exit_code == 2
    assert "nothing to check" in result.stderr


def test_check_bad_budget_and_baseline(run: Run, tmp_path: Path) -> None:
    assert run("check", "8 -> relu", "--max-macs", "lots").exit_code == 2
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    result = run("check", "8 -> relu", "--baseline", str(junk))
    assert result.exit_code == 2
    assert "is not a convcost/1 document" in result.stderr


# -- schema and process-level behaviour -------------------------------------------------------


def test_schema_command_prints_a_valid_schema(run: Run) -> None:
    import jsonschema

    schema = json.loads(run("schema").stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["title"] == "convcost/1"


def _process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    for name in ("NO_COLOR", "FORCE_COLOR"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "convcost", *args], capture_output=True,
                          text=True, env=full_env, cwd=ROOT, timeout=60)


def test_broken_pipe_ends_quietly() -> None:
    command = (f"{sys.executable} -m convcost analyze examples/resnet50.convcost --format json "
               f"| head -c 10")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=ROOT,
                            timeout=60)
    assert len(result.stdout) == 10
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr


def test_no_escape_codes_without_a_terminal_unless_forced() -> None:
    plain = _process("compare", *SEED)
    assert plain.returncode == 0 and "\x1b[" not in plain.stdout
    forced = _process("compare", *SEED, env={"FORCE_COLOR": "1"})
    assert "\x1b[" in forced.stdout
    both = _process("compare", *SEED, env={"FORCE_COLOR": "1", "NO_COLOR": "1"})
    assert "\x1b[1m" in both.stdout or "\x1b[" not in both.stdout  # bold allowed, no colour
    assert "\x1b[36m" not in both.stdout and "\x1b[31m" not in both.stdout


def test_columns_is_honoured() -> None:
    narrow = _process("analyze", "56x56x64 -> 3x3(64)", env={"COLUMNS": "60"})
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60


def test_python_dash_m_and_version() -> None:
    result = _process("--version")
    assert result.returncode == 0 and "convcost, version" in result.stdout


def test_directories_globs_and_empty_inputs(run: Run, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("analyze", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert f"{tmp_path / 'empty'}: error: no .convcost or .onnx files found in directory" in result.stderr
    nested = tmp_path / "specs" / "deeper"
    nested.mkdir(parents=True)
    (nested / "a.convcost").write_text("a: 8 -> relu\n")
    (tmp_path / "specs" / "b.convcost").write_text("b: 8 -> 1x1(4)\n")
    (tmp_path / "specs" / "notes.txt").write_text("not a spec")
    found = _json(run("analyze", str(tmp_path / "specs"), "--format", "json"))
    assert sorted(m["name"] for m in found["models"]) == ["a", "b"]
    globbed = _json(run("analyze", str(tmp_path / "specs" / "**" / "*.convcost"),
                        "--format", "json"))
    assert sorted(m["name"] for m in globbed["models"]) == ["a", "b"]
    assert run("analyze", str(tmp_path / "nothing-*.convcost")).exit_code == 2
    (tmp_path / "blank.convcost").write_text("# only a comment\n\n")
    blank = run("analyze", str(tmp_path / "blank.convcost"))
    assert blank.exit_code == 2 and "defines no models" in blank.stderr


# -- hostile environments: pipes, closed streams, encodings (issue 11) ------------------------

def _bash(script: str, tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """Run ``script`` (``$P`` is the convcost command) and parse its ``key=value`` lines."""
    full_env = {**os.environ, "P": f"{sys.executable} -m convcost", **(env or {})}
    for name in ("NO_COLOR", "FORCE_COLOR", "COLUMNS"):
        full_env.pop(name, None)
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=ROOT,
                            env=full_env, timeout=120)
    assert "Traceback" not in result.stdout + result.stderr
    return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)


def test_exit_codes_survive_pipes_and_closed_or_full_streams(tmp_path: Path) -> None:
    err = tmp_path / "err"
    many = tmp_path / "many.convcost"  # about 300 KB of CSV: more than a pipe buffer holds
    many.write_text("8 -> 1x1(8) -> relu\n" * 2000)
    codes = _bash(f"""
        $P analyze {many} --format csv | head -1 >/dev/null; echo head=${{PIPESTATUS[0]}}
        $P analyze {many} "8 -> bogus" --format csv 2>{err}1 | true; echo true=${{PIPESTATUS[0]}}
        $P analyze "8 -> relu" >&- 2>{err}2; echo closed=$?
        $P analyze "8 -> relu" >/dev/full 2>{err}3; echo full=$?
        $P analyze - <&- >/dev/null 2>{err}4; echo stdin=$?
    """, tmp_path)
    assert codes == {"head": "0", "true": "2", "closed": "2", "full": "2", "stdin": "2"}
    assert "; 1 with errors" in (tmp_path / "err1").read_text()  # the summary survives
    assert "standard output is closed" in (tmp_path / "err2").read_text()
    assert "No space left on device" in (tmp_path / "err3").read_text()
    assert "<stdin>: error: defines no models" in (tmp_path / "err4").read_text()


def test_exit_codes_survive_a_standard_error_that_cannot_be_written(tmp_path: Path) -> None:
    # Writing the diagnostic failed inside the error handler, and the exit code became 1.
    codes = _bash("""
        $P analyze examples/zoo "8 -> bogus" 2>&1 | head -1 >/dev/null; echo both=${PIPESTATUS[0]}
        $P analyze "8 -> bogus" 2>/dev/full; echo full=$?
        $P analyze --bogus 2>/dev/full; echo usage=$?
        $P analyze "8 -> relu" 2>/dev/full >/dev/null; echo ok=$?
    """, tmp_path)
    assert codes == {"both": "2", "full": "2", "usage": "2", "ok": "0"}


@pytest.mark.parametrize("env", [
    {"PYTHONIOENCODING": "ascii"},
    {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
], ids=["pythonioencoding", "c-locale"])
def test_ascii_only_output_falls_back_to_ascii_glyphs(env: dict[str, str]) -> None:
    env = {**env, "PYTHONIOENCODING": env.get("PYTHONIOENCODING", "")}
    result = _process("compare", "56×56×64 → 3x3(64)", "56x56x64 -> 1x1(64)", "--format",
                      "table", env=env)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert result.stdout.isascii() and "56x56x64 -> 3x3(64)" in result.stdout


def test_odd_terminal_variables() -> None:
    zero = _process("analyze", "56x56x64 -> 3x3(64)", env={"COLUMNS": "0"})
    assert zero.returncode == 0 and "3x3(64)" in zero.stdout
    off = _process("compare", *SEED, env={"FORCE_COLOR": "0"})
    assert off.returncode == 0 and "\x1b[" not in off.stdout


def test_chains_starting_with_a_dash_version_flag_and_completion() -> None:
    dash = _process("analyze", "-1 -> relu", "--format", "json")
    assert dash.returncode == 2 and dash.stderr.startswith("<arg>:1:1: error:")
    arrow = _process("analyze", "-> relu")
    assert arrow.returncode == 2 and arrow.stderr.startswith("<arg>:1:1: error: missing input")
    assert _process("-V").stdout.startswith("convcost, version")
    completion = _process(env={"_CONVCOST_COMPLETE": "bash_complete", "COMP_CWORD": "2",
                               "COMP_WORDS": "convcost analyze exa"})
    assert completion.stdout.splitlines() == ["file,exa"]


@pytest.mark.parametrize("module", ["click", "convcost.cost.report"])
def test_ctrl_c_during_start_up_imports_is_quiet(module: str) -> None:
    code = ("import sys\n"
            "class Interrupt:\n"
            "    @staticmethod\n"
            "    def find_spec(name, path=None, target=None):\n"
            f"        if name == {module!r}:\n"
            "            raise KeyboardInterrupt\n"
            "sys.meta_path.insert(0, Interrupt)\n"
            "sys.argv[0] = ARGV0\n"
            "import convcost.cli\n")
    for argv0, codes in (("convcost", {130}), ("script.py", {1, -2})):  # -2: killed by SIGINT
        result = subprocess.run([sys.executable, "-c", code.replace("ARGV0", repr(argv0))],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert result.returncode in codes
        if argv0 == "convcost":  # the command: quiet; a library import: Python's own report
            assert result.stderr == "convcost: interrupted\n"
        else:
            assert "KeyboardInterrupt" in result.stderr


def test_non_ascii_digits_and_dtype_spellings_in_options(run: Run) -> None:
    size = run("analyze", "8 -> relu", "--size", "²")
    assert size.exit_code == 2 and "is not a size like 224x224" in size.stderr
    batch = run("analyze", "8 -> relu", "--batch", "٣")
    assert batch.exit_code == 2 and "is not a whole number" in batch.stderr
    huge = run("analyze", "8 -> relu", "--batch", "9" * 5000)
    assert huge.exit_code == 2 and "must be from 1 to 2,147,483,647" in huge.stderr
    dtype = run("analyze", "8 -> relu", "--dtype", "fp16")
    assert dtype.exit_code == 2 and "did you mean 'float16'?" in dtype.stderr


@pytest.mark.parametrize("args", [
    ("analyze", "8 -> relu", "--top", "٣"), ("analyze", "8 -> relu", "--depth", "３"),
    ("analyze", "8 -> relu", "-j", "٣"), ("analyze", "8 -> relu", "--threads", "٣"),
    ("analyze", "8 -> relu", "--bench-budget", "٣"), ("calibrate", "--threads", "٣"),
    ("check", "8 -> relu", "--max-time", "t4=٣ms"),
    ("check", "8 -> relu", "--max-macs", "1K", "--tolerance", "٣%"),
])
def test_non_ascii_digits_are_refused_by_every_option(run: Run, args: tuple[str, ...]) -> None:
    # --batch refused '٣' while --top, --depth, -j, --threads, --bench-budget, --max-time
    # and --tolerance took it (click's int and Python's float() and \d accept any digit).
    result = run(*args)
    assert result.exit_code == 2 and "Invalid value" in result.stderr, result.stderr


def test_channels_first_input_warns_on_stderr(run: Run) -> None:
    result = run("analyze", "3x224x224 -> 3x3(64)", "--format", "json")
    assert result.exit_code == 0
    assert "warning: input 3x224x224 reads as H=3, W=224, C=224" in result.stderr


def test_a_bug_is_reported_without_a_traceback(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import convcost.cli.base as base
    from convcost.cli import main

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(base, "analyze_arguments", broken)
    for name in ("COLUMNS", "FORCE_COLOR", "NO_COLOR", "CONVCOST_TRACEBACK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit) as exit_:
        main(["analyze", "8 -> relu"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == ("convcost: internal error: RuntimeError: boom; this is a "
                                       "bug in convcost (set CONVCOST_TRACEBACK=1 to see where)\n")


def test_main_in_process_gives_the_garbage_collector_back(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """main() turns the cyclic collector off for its run; a caller in the same process (a
    test, a script) gets it back on, or later allocations would pile up uncollected."""
    import gc

    from convcost.cli import main

    monkeypatch.setenv("NO_COLOR", "1")
    assert gc.isenabled()
    with pytest.raises(SystemExit):
        main(["analyze", "8 -> relu", "--format", "json"])
    assert gc.isenabled()


def test_tables_of_several_models_are_separated_by_a_blank_line(run: Run) -> None:
    # One model's totals ran straight into the next model's title.
    result = run("analyze", str(ROOT / "examples" / "bottleneck.convcost"))
    assert result.exit_code == 0
    assert "KiB\n\nbottleneck  (1x1x256" in result.stdout
    compared = run("compare", "8 -> 1x1(8)", "8 -> 1x1(16)", "--device", "t4")
    assert "\n\npredicted time per device" in compared.stdout
