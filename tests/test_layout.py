"""The house keeps its shape: imports go only the allowed way between rooms, and modules and functions stay small.

The rooms are drawn in docs (DESIGN.md §2): app.py on top, chatbot/ with one sub-package per part, and the
knowledge/ and ingest/ packages beside it. Each check walks the product's own modules with `ast` (tests/ and
bench/ are not product), so it sees every import: at the top, inside functions, and `from x import y` where
y is a module.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

AREAS = ["app.py", "chatbot", "knowledge", "ingest"]
FIRST_PARTY = {"app", "chatbot", "knowledge", "ingest"}

# The architecture: room -> what it may import besides itself. An entry admits that module and what lies inside
# it, except a room nested below it ("chatbot.llm" does not admit "chatbot.llm.runtime"). A module belongs to the
# longest room that prefixes its name; a new top-level module of chatbot/ falls into "chatbot", which nothing
# may import: give it a room here instead.
FRONT_END = {
    "chatbot.services",
    "chatbot.conversation",
    "chatbot.insights",
    "chatbot.access",
    "chatbot.settings",
    "chatbot.errors",
    "knowledge",
}
MAY_IMPORT: dict[str, set[str]] = {
    "app": {"chatbot.ui", "chatbot.web", "chatbot.wiring", "chatbot.settings", "chatbot.access", "knowledge", "ingest"},
    "chatbot.wiring": {
        "chatbot.settings",
        "chatbot.errors",
        "chatbot.services",
        "chatbot.conversation",
        "chatbot.insights",
        "chatbot.migrations",
        "chatbot.llm",
        "chatbot.access",
        "knowledge",
    },
    "chatbot.ui": FRONT_END,
    "chatbot.web": FRONT_END,
    "chatbot.services": {"chatbot.conversation", "chatbot.insights", "chatbot.access", "chatbot.settings", "knowledge"},
    "chatbot.conversation": {"chatbot.llm.factory", "chatbot.settings", "chatbot.errors", "knowledge"},
    "chatbot.migrations": {
        "chatbot.access",
        "chatbot.conversation",
        "chatbot.insights",
        "chatbot.settings",
        "knowledge",
    },
    "chatbot.insights": {
        "chatbot.conversation",
        "chatbot.llm.factory",
        "chatbot.settings",
        "chatbot.errors",
        "knowledge",
    },
    "chatbot.llm": {"chatbot.llm.runtime", "chatbot.settings", "chatbot.errors"},
    "chatbot.llm.runtime": {"chatbot.settings", "chatbot.errors"},
    "chatbot.access": {"chatbot.settings", "chatbot.errors", "knowledge"},
    "chatbot.settings": {"knowledge.settings"},
    "chatbot.errors": {"knowledge.errors"},
    "chatbot": set(),
    "knowledge": set(),
    "ingest": {"knowledge"},
}

# Third-party packages that belong to one room: the API and ingest paths must start without them.
THIRD_PARTY_HOMES: dict[str, set[str]] = {"gradio": {"chatbot.ui", "app"}}

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 40

# Exceptions to the size budgets, "path" or "path::qualname" -> why. Keep it short; an entry that is no longer
# over budget fails the test, so the list only shrinks.
OVER_BUDGET: dict[str, str] = {}


@dataclass(frozen=True)
class Arrow:
    """One import: where it is written and the module it names."""

    path: str
    line: int
    source: str
    target: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}  {room_of(self.source)} → {self.target}"


def product_files(area: str) -> list[Path]:
    root = REPO / area
    return [root] if root.is_file() else sorted(root.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


PRODUCT_MODULES = {module_name(path) for area in AREAS for path in product_files(area)}


def room_of(module: str) -> str:
    rooms = [room for room in MAY_IMPORT if module == room or module.startswith(room + ".")]
    return max(rooms, key=len) if rooms else module.split(".")[0]


def admits(entry: str, target: str) -> bool:
    return (target == entry or target.startswith(entry + ".")) and room_of(target) == room_of(entry)


def imports_of(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import anywhere in the tree; `from x import y` names x.y when that is
    a product module, else x; relative imports are resolved against `module`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in PRODUCT_MODULES else base


def arrows(area: str) -> list[Arrow]:
    found = []
    for path in product_files(area):
        module = module_name(path)
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, target in imports_of(tree, module, path.name == "__init__.py"):
            found.append(Arrow(str(path.relative_to(REPO)), line, module, target))
    return found


def test_the_import_walk_resolves_modules_imported_inside_functions_and_relatively() -> None:
    tree = ast.parse("def f():\n    from chatbot.llm import factory\n    from . import pipeline\n    import gradio\n")
    found = list(imports_of(tree, "ingest.__main__", is_package=False))
    assert found == [(2, "chatbot.llm.factory"), (3, "ingest.pipeline"), (4, "gradio")]


def test_a_room_entry_admits_what_lies_inside_it_but_not_a_room_nested_below() -> None:
    assert admits("chatbot.llm", "chatbot.llm.local_model")
    assert admits("chatbot.llm.factory", "chatbot.llm.factory")
    assert not admits("chatbot.llm", "chatbot.llm.runtime.kv_cache")
    assert not admits("chatbot.llm.factory", "chatbot.llm.local_model")
    assert room_of("chatbot.llm.runtime.kv_cache") == "chatbot.llm.runtime"
    assert room_of("chatbot.something_new") == "chatbot"


def test_every_room_in_the_table_exists() -> None:
    missing = [room for room in MAY_IMPORT if room != "app" and room not in PRODUCT_MODULES]
    assert not missing, f"rooms in MAY_IMPORT without a module or package: {missing}"


@pytest.mark.parametrize("area", AREAS)
def test_imports_go_only_the_way_the_room_table_allows(area: str) -> None:
    wrong = []
    for arrow in arrows(area):
        if arrow.target.split(".")[0] not in FIRST_PARTY:
            continue
        source_room = room_of(arrow.source)
        allowed = MAY_IMPORT.get(source_room, set()) | {source_room}
        if not any(admits(entry, arrow.target) for entry in allowed):
            wrong.append(f"{arrow}   ({source_room} may import: {', '.join(sorted(allowed))})")
    assert not wrong, "imports against the room table (tests/test_layout.py MAY_IMPORT):\n" + "\n".join(wrong)


@pytest.mark.parametrize("area", AREAS)
def test_third_party_packages_with_a_home_are_imported_only_there(area: str) -> None:
    wrong = [
        f"{arrow}   (only {', '.join(sorted(homes))} may import {package})"
        for arrow in arrows(area)
        for package, homes in THIRD_PARTY_HOMES.items()
        if arrow.target.split(".")[0] == package and room_of(arrow.source) not in homes
    ]
    assert not wrong, "\n".join(wrong)


def module_sizes(areas: list[str]) -> dict[str, int]:
    return {
        str(path.relative_to(REPO)): len(path.read_text().splitlines())
        for area in areas
        for path in product_files(area)
    }


def function_sizes(areas: list[str]) -> dict[str, int]:
    """Lines of each function and method, from its `def` line to the end of its body, without its docstring."""
    sizes: dict[str, int] = {}
    for area in areas:
        for path in product_files(area):
            tree = ast.parse(path.read_text(), filename=str(path))
            for qualname, node in _functions(tree, ""):
                lines = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                first = node.body[0]
                if isinstance(first, ast.Expr) and isinstance(getattr(first.value, "value", None), str):
                    lines -= first.end_lineno - first.lineno + 1  # type: ignore[operator]
                sizes[f"{path.relative_to(REPO)}::{qualname}"] = lines
    return sizes


def _functions(node: ast.AST, prefix: str) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + child.name, child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def over_budget(sizes: dict[str, int], limit: int) -> list[str]:
    return [f"{name}: {n} lines" for name, n in sorted(sizes.items()) if n > limit and name not in OVER_BUDGET]


@pytest.mark.parametrize("area", AREAS)
def test_no_product_module_is_over_400_lines(area: str) -> None:
    long = over_budget(module_sizes([area]), MAX_MODULE_LINES)
    assert not long, f"modules over {MAX_MODULE_LINES} lines; split them by responsibility:\n" + "\n".join(long)


@pytest.mark.parametrize("area", AREAS)
def test_no_function_or_method_is_over_40_lines(area: str) -> None:
    """Counted from the `def` line to the end of the body, the docstring excluded."""
    long = over_budget(function_sizes([area]), MAX_FUNCTION_LINES)
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines; split them:\n" + "\n".join(long)


def test_every_exception_to_the_size_budgets_is_still_needed() -> None:
    sizes = {**module_sizes(AREAS), **function_sizes(AREAS)}
    stale = [
        name for name in OVER_BUDGET if sizes.get(name, 0) <= (MAX_FUNCTION_LINES if "::" in name else MAX_MODULE_LINES)
    ]
    assert not stale, f"OVER_BUDGET entries that are gone or back within budget; remove them: {stale}"
