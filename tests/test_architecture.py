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
            if (module, names) in (("aqua_lab", ["__version__"]), ("aqua_lab.version", ["__version__"])):
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


def _import_graph() -> dict[str, set[str]]:
    """Module → the aqua_lab modules it imports, counting every import (inside functions and under
    TYPE_CHECKING too: a lazy import hides a circle, it does not remove it).  ``from pkg import name``
    is an edge to the submodule ``pkg.name`` when there is one, else to ``pkg``."""
    modules = {_module_of(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        edges = set()
        for _, target, names in _imports(path):
            found = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules]
            while not found and target and target not in modules:
                target = target.rpartition(".")[0]
            edges.update(found or ([target] if target else []))
        graph[module] = edges - {module}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next((w for w in edges if w in graph), None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph[step]))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_the_circle_finder_finds_a_circle_and_only_it():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _circles(graph) == [{"a", "b", "c"}]


def test_no_import_circles():
    """A module that imports another which imports it back is one module in two files: move the
    shared name to a small module of its own (as server/route.py, emulator/common.py,
    oci/clients.py, aqua_lab/version.py, aqua_lab/precisions.py and local/ports.py did)."""
    new = [sorted(circle) for circle in _circles(_import_graph())]
    assert new == [], "import circles:\n" + "\n".join(" ↔ ".join(c) for c in new)
