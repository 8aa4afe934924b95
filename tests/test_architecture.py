"""The layout promised in ARCHITECTURE.md: folders per part, one-way dependencies, no import cycles, short modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "mmsearch"
BASICS = {"__init__.py", "__main__.py", "errors.py", "types.py", "paths.py", "py.typed"}
# Lower layers never import higher ones (ARCHITECTURE.md, "Dependencies point one way").
LAYER = {
    "models": 1,
    "stores": 1,
    "trecvid": 1,
    "index": 2,
    "ingest": 3,
    "search": 4,
    "export": 5,
    "server": 6,
    "cli": 7,
    "testing": 1,
}
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    mods = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ("mmsearch", *path.relative_to(PACKAGE).with_suffix("").parts)
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            parent = base[: len(base) - node.level + 1] if node.level else []
            module = ".".join(parent + ([node.module] if node.module else []))
            for alias in node.names:
                target = f"{module}.{alias.name}"
                found.add(target if target in mods else module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in mods and m != name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, mods) for name, path in mods.items()}


def _cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    stack, seen = [(start, [start])], set()
    while stack:
        node, trail = stack.pop()
        for nxt in graph[node]:
            if nxt == start:
                return [*trail, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*trail, nxt]))
    return None


def test_no_import_cycle_between_modules() -> None:
    graph = _graph()
    cycles = [c for c in (_cycle_from(m, graph) for m in graph) if c]
    assert cycles == []


def test_top_level_is_basics_plus_one_folder_per_part() -> None:
    files = {p.name for p in PACKAGE.iterdir() if p.is_file()}
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert files <= BASICS
    assert folders == set(LAYER) | {"assets"}


def test_dependencies_point_one_way() -> None:
    wrong = []
    for name, deps in _graph().items():
        part = name.split(".")[1] if name.count(".") else None
        for dep in deps:
            dep_part = dep.split(".")[1] if dep.count(".") else None
            if part in LAYER and dep_part in LAYER and dep_part != part and LAYER[dep_part] >= LAYER[part]:
                wrong.append((name, dep))
    assert wrong == []


def test_product_code_does_not_import_test_media() -> None:
    users = [
        n
        for n, deps in _graph().items()
        if not n.startswith("mmsearch.testing") and any(d.startswith("mmsearch.testing") for d in deps)
    ]
    assert users == []


def test_no_module_over_the_line_limit() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


# The seams every store is used through (ARCHITECTURE.md, "Where things go"); other stores/ modules are concrete.
STORE_SEAMS = {"mmsearch.stores", "mmsearch.stores.protocol", "mmsearch.stores.registry"}
# Underscored by the standard library, public all the same (namedtuple's API).
PUBLIC_UNDERSCORED = {"_replace", "_asdict", "_fields", "_make"}


def test_only_stores_import_a_concrete_store() -> None:
    """A new store is one module plus one registry entry: nothing outside stores/ may name a concrete one."""
    wrong = [
        (name, dep)
        for name, deps in _graph().items()
        if not name.startswith("mmsearch.stores")
        for dep in deps
        if dep.startswith("mmsearch.stores.") and dep not in STORE_SEAMS
    ]
    assert wrong == []


def _private_names(tree: ast.AST) -> set[str]:
    """`_name`s a module defines: functions, classes, attributes it assigns or declares, module variables."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if n.startswith("_") and not n.startswith("__") and n not in PUBLIC_UNDERSCORED}


def test_no_module_uses_a_private_member_of_another() -> None:
    """`other._cat()` or `from .x import _helper` is a seam that wants a public method (STYLE.md, "Seams")."""
    trees = {name: ast.parse(path.read_text()) for name, path in _modules().items()}
    defined = {name: _private_names(tree) for name, tree in trees.items()}
    anywhere = set().union(*defined.values())
    wrong = []
    for name, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("mmsearch")):
                wrong += [(name, a.name) for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            elif isinstance(node, ast.Attribute) and node.attr in anywhere and node.attr not in defined[name]:
                wrong.append((name, node.attr))  # another module's private member, reached through an object
    assert wrong == []
