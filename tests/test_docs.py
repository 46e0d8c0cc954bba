"""The documentation site (docs/, Sphinx + MyST) builds without a single warning, every link in it
leads to a page and an anchor that exist, and every CLI example in it parses with the CLI's own
parser — so a renamed verb or option, a page left out of the contents or a dead anchor fails here,
not in a reader's terminal."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from aqua_lab.cli.main import build_parser, main

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
HTML = DOCS / "_build" / "html"
#: the command docs/conf.py and the setup page give; -E re-reads every page, so an unchanged page's
#: warnings are reported again (an incremental build would stay silent about them)
BUILD = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-E", "-q", "-b", "html"]
#: what runs the CLI in a shell example: `aqua-lab …`, `./run.sh …` (aqua-lab inside the project's
#: environment) and `python -m aqua_lab …`
CLI_PREFIXES = (("aqua-lab",), ("./run.sh",), ("python", "-m", "aqua_lab"), (".venv/bin/aqua-lab",))
SHELL_OPERATORS = {"|", "||", "&&", ";", "&", "<", ">", ">>", "2>", "(", ")"}


@pytest.fixture(scope="module")
def build() -> subprocess.CompletedProcess:
    doctrees = DOCS / "_build" / "doctrees"
    return subprocess.run(
        [*BUILD, "-d", str(doctrees), str(DOCS), str(HTML)], capture_output=True, text=True, timeout=600, cwd=ROOT
    )


def test_the_docs_build_with_no_warning(build):
    # -q leaves only warnings and errors on stderr; -W makes the first one fail the build
    assert build.returncode == 0 and build.stderr.strip() == "", build.stderr[-6000:]
    pages = {p.stem for p in DOCS.glob("*.md")}
    built = {p.stem for p in HTML.glob("*.html")}
    assert pages <= built, f"pages not built: {sorted(pages - built)}"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):  # noqa: ANN001 — HTMLParser's signature
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if (tag, name) in {("a", "href"), ("img", "src"), ("link", "href"), ("script", "src")} and value:
                self.links.append(value)


def _parsed(page: Path) -> _Links:
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def test_every_link_between_the_built_pages_leads_somewhere(build):
    assert build.returncode == 0, build.stderr[-2000:]
    pages = sorted(HTML.rglob("*.html"))
    assert len(pages) >= 10, pages
    parsed = {page: _parsed(page) for page in pages}
    broken, checked = [], 0
    for page, found in parsed.items():
        for link in found.links:
            url = urlsplit(link)
            if url.scheme or url.netloc:
                # the docs stand alone: nothing outside this repository (a loopback example is not a link)
                broken.append(f"{page.relative_to(HTML)}: {link} leaves the documentation")
                continue
            target = (page.parent / unquote(url.path)).resolve() if url.path else page
            if not target.exists():
                broken.append(f"{page.relative_to(HTML)}: {link}: no {target.relative_to(HTML.resolve())}")
                continue
            checked += 1
            if url.fragment and target.suffix == ".html":
                ids = parsed.get(target, None) or _parsed(target)
                if unquote(url.fragment) not in ids.ids:
                    broken.append(f"{page.relative_to(HTML)}: {link}: no anchor #{url.fragment}")
    assert broken == [], "\n".join(broken)
    assert checked > 100, checked  # the contents alone link every page from every page


def test_the_pages_stand_alone():
    """What tests/test_architecture.py asks of the README, asked of every page: no path outside the
    repository, nothing only the developers' own notes hold."""
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        assert "../" not in text and "shared/" not in text and "DESIGN.md" not in text, page.name
        assert "until then" not in text, page.name


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell snippet as argument lists: continuation lines joined, comments
    dropped, a quoted value may span lines, pipes and `||` end a command."""
    lines, current, quote, i = [], [], None, 0
    while i < len(script):
        ch = script[i]
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "\\" and script[i + 1 : i + 2] == "\n":
            ch, i = " ", i + 1
        elif ch == "#" and (not current or current[-1].isspace()):
            while i < len(script) and script[i] != "\n":
                i += 1
            continue
        elif ch == "\n":
            lines.append("".join(current))
            current, i = [], i + 1
            continue
        current.append(ch)
        i += 1
    lines.append("".join(current))
    commands = []
    for line in filter(str.strip, lines):
        lexer = shlex.shlex(line, posix=True, punctuation_chars="|&;<>()")
        lexer.whitespace_split = True
        command: list[str] = []
        for token in [*lexer, ";"]:
            if token in SHELL_OPERATORS:
                if command:
                    commands.append(command)
                command = []
            else:
                command.append(token)
    return commands


def cli_examples(text: str) -> list[list[str]]:
    """aqua-lab's arguments in every ```bash block of a page."""
    examples = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S):
        for command in shell_commands(block):
            while command and re.match(r"[A-Za-z_]\w*=", command[0]):  # `VAR=value aqua-lab …`
                command = command[1:]
            for prefix in CLI_PREFIXES:
                if tuple(command[: len(prefix)]) == prefix and len(command) > len(prefix):
                    examples.append(command[len(prefix) :])
    return examples


def parse_problem(argv: list[str]) -> str | None:
    """None when the CLI's parser takes ``argv``; else what it said."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):  # --help and --version exit 0
            return said.getvalue().strip() or f"exit {exc.code}"
    return None


def test_every_cli_example_in_the_docs_parses(monkeypatch):
    # the examples' own platform for planning: OCI's catalog as shipped; parsing reaches no platform
    monkeypatch.setenv("AQUA_LAB_PLATFORM", "bundled")
    pages = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    failures, per_page = [], {}
    for page in pages:
        examples = cli_examples(page.read_text(encoding="utf-8"))
        per_page[page.stem] = len(examples)
        for argv in examples:
            problem = parse_problem(argv)
            if problem:
                failures.append(f"{page.relative_to(ROOT)}: aqua-lab {shlex.join(argv)}\n    {problem}")
    assert failures == [], "\n".join(failures)
    # every front and platform page shows the CLI at work, and the check saw them all
    for stem in ("cli", "local", "oci", "scaling", "evaluation", "capacity"):
        assert per_page.get(stem, 0) > 0, (stem, per_page)
    assert sum(per_page.values()) >= 50, per_page


#: verbs that only plan, so their examples run for real on the bundled platform (OCI's catalog as shipped)
PLANNING_VERBS = {
    ("plan",),
    ("deployment", "list_shapes"),
    ("deployment", "get_multimodel_deployment_config"),
    ("deployment", "validate"),
    ("deployment", "payload"),
    ("model", "list"),
}


def runs_on_bundled(argv: list[str]) -> bool:
    """A planning example with no placeholder (…, path/to, an OCID) and no platform of its own."""
    verb = tuple(argv[:1]) if argv[:1] == ["plan"] else tuple(argv[:2])
    placeholder = any("…" in arg or "path/to" in arg or "ocid1." in arg for arg in argv)
    return verb in PLANNING_VERBS and not placeholder and "--platform" not in argv


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


def test_the_planning_examples_run_on_the_bundled_platform(monkeypatch, tmp_path):
    """What the docs show a plan printing is what it prints: each planning example runs, and the
    output a block shows (its `#  ` lines) comes out of the examples before it."""
    monkeypatch.setenv("AQUA_LAB_PLATFORM", "bundled")
    monkeypatch.setenv("AQUA_LAB_DATA_DIR", str(tmp_path))
    ran, shown = 0, 0
    for page in [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]:
        for block in re.findall(r"^```bash\n(.*?)^```", page.read_text(encoding="utf-8"), re.M | re.S):
            printed = ""
            for argv in cli_examples(f"```bash\n{block}```\n"):
                if runs_on_bundled(argv):
                    code, out, err = run_cli(argv)
                    assert code == 0 and out.strip(), f"{page.name}: aqua-lab {shlex.join(argv)}\n{err}"
                    printed += out
                    ran += 1
            for line in re.findall(r"^#  (.+)$", block, re.M):
                assert " ".join(line.split()) in " ".join(printed.split()), f"{page.name}: not printed: {line}"
                shown += 1
    assert ran >= 10 and shown >= 2, (ran, shown)


def test_the_examples_check_catches_a_renamed_option():
    page = """```bash
aqua-lab plan --model_ids 'phi-4,gemma-2b' \\
    --shape BM.GPU.A10.4   # a comment
aqua-lab deployment list_shapes --tabel | jq .name
aqua-lab deployment validate --models '[{"model_id": "a"},
                                        {"model_id": "b"}]' --display_name twins
./run.sh deployment chat --model_deployment_id local-x --model_name a --prompt Hi || echo "exit $?"
AQUA_LAB_SHARE_CORES=1 aqua-lab model list
```
"""
    examples = cli_examples(page)
    assert examples[0] == ["plan", "--model_ids", "phi-4,gemma-2b", "--shape", "BM.GPU.A10.4"]
    assert examples[2][:3] == ["deployment", "validate", "--models"] and '"b"' in examples[2][3]
    assert examples[3][-2:] == ["--prompt", "Hi"]
    assert examples[4] == ["model", "list"]
    assert [parse_problem(argv) is None for argv in examples] == [True, False, True, True, True]
    assert "--tabel" in parse_problem(examples[1])


def test_the_build_output_is_not_committed():
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "docs/_build/" in ignored, "the built site is not a source: docs/_build/ belongs in .gitignore"
