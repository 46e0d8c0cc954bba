"""The layering the code promises: fronts (REST, widgets, CLI) reach the platforms, the planner and
the catalog only through the service, so each verb has one implementation."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import aqua_lab

pytestmark = pytest.mark.planning

PACKAGE = Path(aqua_lab.__file__).parent
ALLOWED = ("aqua_lab.service", "aqua_lab.domain", "aqua_lab.errors")


def _front_files() -> list[Path]:
    files = [*(PACKAGE / "server").rglob("*.py"), *(PACKAGE / "widgets").rglob("*.py")]
    for path in PACKAGE.glob("cli*"):
        files += list(path.rglob("*.py")) if path.is_dir() else [path]
    return sorted(files)


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, names) of every aqua_lab import in a file."""
    package = _module_of(path) if path.name == "__init__.py" else _module_of(path).rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found.append((node.lineno, module, [a.name for a in node.names]))
    return [(line, m, names) for line, m, names in found if m == "aqua_lab" or m.startswith("aqua_lab.")]


def _own(module: str, path: Path) -> bool:
    rel = path.relative_to(PACKAGE).parts
    front = "aqua_lab." + (rel[0] if len(rel) > 1 else rel[0].removesuffix(".py"))
    return module == front or module.startswith(front + ".") or module.startswith("aqua_lab.cli")


def test_fronts_import_only_the_service_the_domain_the_errors_and_themselves():
    files = _front_files()
    assert any(p.name == "cli.py" or p.parent.name.startswith("cli") for p in files)
    wrong = []
    for path in files:
        for line, module, names in _imports(path):
            if module == "aqua_lab" and names == ["__version__"]:
                continue
            if any(module == a or module.startswith(a + ".") for a in ALLOWED) or _own(module, path):
                continue
            wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}")
    assert wrong == [], "fronts must go through aqua_lab.service:\n" + "\n".join(wrong)


def test_fronts_never_reach_through_the_service_to_its_platform():
    wrong = [
        f"{path.relative_to(PACKAGE.parent)}:{n}"
        for path in _front_files()
        for n, text in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(service|\.sync)\.platform\b", text)  # the platform itself, not the platform_name verb
    ]
    assert wrong == [], "use a service verb instead of service.platform:\n" + "\n".join(wrong)


DOCS = ("README.md", "labextension/README.md", "notebooks/README.md")


def test_the_docs_stand_alone():
    """Every path a doc names is in the repository (a clone has no ../shared/, no reference files),
    and no doc calls the planner unreachable."""
    root = PACKAGE.parent
    for doc in DOCS:
        text = (root / doc).read_text()
        assert "../" not in text and "shared/" not in text and "DESIGN.md" not in text, doc
        assert "until then" not in text, doc
        for link in re.findall(r"\]\(([^)#]+)\)", text):
            assert link.startswith(("http://127.0.0.1", "http://localhost")) or (root / link).exists(), (doc, link)
