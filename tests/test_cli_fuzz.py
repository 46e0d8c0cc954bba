"""Every option of every ``aqua-lab`` verb, given bad values, ends in one line and a plain exit
status: no traceback, whatever the option, value or platform (issue 25, item 9).

The verbs and options come from the parser itself, so a verb or option added later is fuzzed too.
Nothing here can deploy: the deployments and models named do not exist (an empty temporary data
dir), and ``demo`` — the one verb that deploys without being told what — is only given values it
must refuse before it starts anything."""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

from aqua_lab.cli.main import build_parser, main

pytestmark = pytest.mark.cli

#: negative, zero, huge, words, broken and empty JSON, empty, beyond any int64 and float, NaN
BAD_VALUES = ("-3", "0", "five", "{", "[]", "", "1" + "0" * 400, "1e400", "nan", "inf", "-0.5")

#: what a required option or positional gets while another option is being fuzzed: ids that exist
#: nowhere, so no verb gets as far as doing anything
BASELINE = {
    "model_deployment_id": "no-such-deployment",
    "deployment_id": "no-such-deployment",
    "version": "1",
    "models": '[{"model_id": "no-such-model", "gpu_count": 1}]',
    "display_name": "fuzz",
    "model_ids": "no-such-model",
    "model_name": "x",
    "prompt": "hi",
    "evaluation_id": "no-such-evaluation",
    "evaluation_source_id": "no-such-deployment",
    "evaluation_name": "fuzz",
    "dataset_path": "sample",
    "report_path": "reports",
    "model_parameters": "{}",
    "path": "no-such-file.gguf",
    "model_id": "no-such-model",
    "verdict": "tie",
    "name": "fuzz",
    "completion": "fine",
}

#: verbs left out of the generic fuzz, and why
NOT_FUZZED = {("demo",): "deploys; its --timeout is fuzzed with values it must refuse"}


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(verb path, parser) of every verb that runs something; aliases once."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    yield from leaf_parsers(sub, (*path, name))
    if parser.get_default("run") is not None:
        yield path, parser


def option_name(action: argparse.Action) -> str:
    return next((s for s in action.option_strings if s.startswith("--")), action.option_strings[0])


def baseline_args(parser: argparse.ArgumentParser, skip: argparse.Action | None) -> list[str]:
    """The required options and positionals, each with its baseline value."""
    out, positionals = [], []
    for action in parser._actions:
        if action is skip or isinstance(action, argparse._HelpAction):
            continue
        if not action.option_strings:
            positionals.append(BASELINE[action.dest])
        elif action.required:
            out += [option_name(action), BASELINE[action.dest]]
    return positionals + out


def cases():
    """(verb path, platform, argv) for every option of every verb and every bad value."""
    for path, parser in leaf_parsers(build_parser()):
        if path in NOT_FUZZED:
            continue
        has_platform = any(a.dest == "platform" for a in parser._actions)
        for platform in ("bundled", "local") if has_platform else (None,):
            where = ["--platform", platform] if platform else []
            for action in parser._actions:
                if isinstance(action, argparse._HelpAction) or action.dest == "platform":
                    continue
                base = baseline_args(parser, action)
                for value in BAD_VALUES:
                    if not action.option_strings:  # a positional: the value takes its place
                        yield path, platform, [*path, value, *base, *where]
                    elif action.nargs == 0:  # a flag: a value after it is an argument too many
                        yield path, platform, [*path, *base, *where, option_name(action), value]
                    else:
                        yield path, platform, [*path, *base, *where, option_name(action), value]


def run_in_process(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own refusals
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception:  # noqa: BLE001 — what a user would see: Python's traceback, exit 1
            code = 1
            err.write(traceback.format_exc())
    return code, out.getvalue(), err.getvalue()


def assert_plain_outcome(argv: list[str], code: int, stdout: str, stderr: str) -> None:
    shown = f"aqua-lab {' '.join(repr(a) if len(a) < 40 else repr(a[:20] + '…') for a in argv)}"
    assert "Traceback" not in stdout + stderr, f"{shown}: a traceback\n{stderr[-2000:]}"
    assert code in (0, 1, 2), f"{shown}: exit {code}\n{stderr[-2000:]}"
    if code == 2:
        errors = [line for line in stderr.strip().splitlines() if not line.startswith("aqua-lab: warning:")]
        assert len(errors) == 1, f"{shown}: not one line\n{stderr[-2000:]}"
        assert re.match(r"aqua-lab[\w ]*: error: ", errors[0]), f"{shown}: {errors[0]}"


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """An empty local platform, and a working directory of its own (a report path is relative).
    The parser is built once: building it is most of an in-process run, parsing never changes it."""
    monkeypatch.setenv("AQUA_LAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("AQUA_LAB_PLATFORM", raising=False)
    monkeypatch.delenv("AQUA_LAB_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    parser = build_parser()
    monkeypatch.setattr(sys.modules["aqua_lab.cli.main"], "build_parser", lambda: parser)
    return tmp_path


def test_every_option_of_every_verb_refuses_bad_values_in_one_line(sandbox):
    started, failures, runs = time.monotonic(), [], 0
    for _path, _platform, argv in cases():
        code, stdout, stderr = run_in_process(argv)
        runs += 1
        try:
            assert_plain_outcome(argv, code, stdout, stderr)
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0] + "\n    " + stderr.strip().splitlines()[-1:][0][:300])
    assert runs > 500, f"only {runs} cases: the parser walk found too few options"
    assert not failures, f"{len(failures)} of {runs} runs:\n" + "\n".join(failures[:60])
    assert time.monotonic() - started < 60, "the fuzz is meant to stay under a minute"
    assert not (sandbox / "data" / "deployments").exists() or not any((sandbox / "data" / "deployments").iterdir())


@pytest.mark.parametrize(
    ("option", "value"),
    [("--temperature", "-3"), ("--temperature", "nan"), ("--top_p", "5"), ("--max_tokens", "0"), ("--seed", "1e3")],
)
def test_chat_options_are_checked_before_the_deployment_is_looked_up(sandbox, option, value):
    argv = ["deployment", "chat", "--model_deployment_id", "no-such-deployment", "--model_name", "x"]
    code, stdout, stderr = run_in_process([*argv, "--prompt", "hi", option, value])
    assert code == 2 and stdout == "" and len(stderr.strip().splitlines()) == 1, stderr
    assert re.match(rf"aqua-lab[\w ]*: error: (argument )?{option}: ", stderr), stderr
    # and what to give instead: the range, or the kind of number
    assert re.search(r"between|at most|at least|more than|≤|≥|whole number|finite number", stderr), stderr
    assert "unknown deployment" not in stderr and "ran on the local platform" not in stderr


@pytest.mark.parametrize("value", ["-3", "nan", "inf", "five", "1" + "0" * 400])
def test_demo_refuses_a_bad_timeout_before_it_deploys(sandbox, value, monkeypatch):
    def no_service(*_args, **_kwargs):  # were the check to come too late, nothing is deployed anyway
        raise AssertionError(f"demo went on to deploy with --timeout {value}")

    monkeypatch.setattr("aqua_lab.cli.deployments.AquaLabService", no_service)
    code, _, stderr = run_in_process(["demo", "--timeout", value])
    assert code == 2 and "--timeout" in stderr and len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["deployment", "chat", "--model_deployment_id", "x", "--model_name", "m", "--prompt", "p", "--top_p", "5"],
        ["plan", "--platform", "bundled", "--model_ids", "gemma-2b", "--concurrency", "1" + "0" * 400],
    ],
)
def test_as_a_user_runs_it_no_traceback_reaches_the_terminal(sandbox, argv):
    out = subprocess.run([sys.executable, "-m", "aqua_lab", *argv], capture_output=True, text=True, timeout=120)
    assert_plain_outcome(argv, out.returncode, out.stdout, out.stderr)
    assert out.returncode == 2


def test_every_aqua_lab_command_the_code_suggests_parses():
    """A hint (``the key is the deployment's api_key: `aqua-lab deployment get …` ``) is a command a
    user copies: each one written in backquotes anywhere in aqua_lab/ parses as written."""
    root = Path(__file__).parent.parent / "aqua_lab"
    parser = build_parser()
    found = []
    for source in root.rglob("*.py"):
        tree = ast.parse(source.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                text = node.value
            else:
                continue
            for command in re.findall(r"`aqua-lab ([^`]+)`", text):
                found.append((source.relative_to(root.parent), command))
    assert len(found) >= 5, found
    for where, command in found:
        words = [re.sub(r"<[^>]*>", "X", w) for w in command.replace("<its compartment>", "X").split()]
        try:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                parser.parse_args(words)
        except SystemExit:
            pytest.fail(f"{where}: `aqua-lab {command}` does not parse: {err.getvalue().strip()}")
