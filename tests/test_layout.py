"""The layout: imports go one way (CLI -> sweeps / search -> run library -> agent -> brain -> losses / networks ->
blocAndTools), read from the source with every function-level import counted."""
import ast
import unittest
from pathlib import Path

from tests.helpers import REPO

PACKAGES = ("SoftActorCritic", "blocAndTools")
CLI = "SoftActorCritic.experiment_runner"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in (REPO / package).rglob("*.py")}


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports anywhere in its body (module level, functions, TYPE_CHECKING blocks);
    `from package import name` counts as importing the submodule package.name when there is one."""
    found = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: `from .x import y` inside package p is p.x
                parents = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parents + ([base] if base else []))
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names}
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports; package __init__ files (re-exports) are left out."""
    modules = project_modules()
    return {name: imported_modules(path, modules) - {name} for name, path in modules.items()
            if path.name != "__init__.py" or name == CLI}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None (depth-first search with colours)."""
    colour, stack = dict.fromkeys(graph, 0), []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if colour.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if colour.get(target) == 0 and (cycle := visit(target)):
                return cycle
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if colour[node] == 0 and (cycle := visit(node)):
            return cycle
    return None


class ImportGraphTest(unittest.TestCase):
    def test_the_graph_finds_a_planted_cycle(self):  # the checker itself can fail
        self.assertEqual(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}), ["a", "b", "c", "a"])
        self.assertIsNone(find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}))

    def test_function_level_imports_are_counted(self):
        graph = import_graph()
        self.assertIn("SoftActorCritic.agent", graph["SoftActorCritic.runs"])  # imported inside train_one

    def test_no_import_cycle_in_the_project(self):
        self.assertIsNone(find_cycle(import_graph()))

    def test_no_module_imports_from_the_cli(self):
        importers = sorted(name for name, targets in import_graph().items()
                           if any(target.startswith(CLI) for target in targets)
                           and not name.startswith(CLI) and name != "SoftActorCritic.__main__")
        self.assertEqual(importers, [])

    def test_building_blocks_do_not_import_the_algorithm(self):
        importers = sorted(name for name, targets in import_graph().items() if name.startswith("blocAndTools")
                           and any(target.startswith("SoftActorCritic") for target in targets))
        self.assertEqual(importers, [])


if __name__ == "__main__":
    unittest.main()
