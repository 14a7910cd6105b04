"""The package's import rules: the layers' contracts (import-linter, configured in
pyproject.toml) and no import cycles between its modules, which import-linter has no
contract for. Imports under `if TYPE_CHECKING:` count too: a cycle of types is a cycle
of the design, and a refactoring away from one of the runtime."""

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]


def cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """One cycle (its modules in import order, the first again at the end) for each group
    of modules that import each other in a circle (Tarjan's strongly connected components)."""
    modules = sorted(graph.modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(start: str) -> None:  # iterative: the graph may be deeper than the recursion limit
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            module, imported = work[-1]
            for other in imported:
                if other not in index:
                    index[other] = low[other] = len(index)
                    stack.append(other)
                    on_stack.add(other)
                    work.append((other, iter(sorted(graph.find_modules_directly_imported_by(other)))))
                    break
                if other in on_stack:
                    low[module] = min(low[module], index[other])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1 or graph.direct_import_exists(
                            importer=module, imported=module):
                        components.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)

    found = []
    for component in components:
        first = component[0]
        members = set(component)
        step = next(m for m in sorted(graph.find_modules_directly_imported_by(first))
                    if m in members)
        back = graph.find_shortest_chain(importer=step, imported=first) or (step, first)
        found.append([first, *back])
    return found


def test_no_import_cycles() -> None:
    graph = grimp.build_graph("trustfabric")
    found = cycles(graph)
    assert not found, "import cycles in trustfabric:\n" + "\n".join(
        " -> ".join(cycle) for cycle in found)


def test_cycle_finder_reports_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("p.a", "p.b", "p.c", "p.d"):
        graph.add_module(module)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    graph.add_import(importer="p.c", imported="p.a")
    graph.add_import(importer="p.c", imported="p.d")
    assert cycles(graph) == [["p.a", "p.b", "p.c", "p.a"]]
    graph.remove_import(importer="p.c", imported="p.a")
    assert cycles(graph) == []


def test_layer_contracts() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
