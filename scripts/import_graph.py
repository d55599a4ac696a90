#!/usr/bin/env python3
"""Static import graph of the z1data package, read with ``ast`` alone (nothing is imported).

Why: import cycles make import order matter (a half-initialised module fails, sometimes only on a lazy path),
and docs/architecture.md's layering should be measured, not remembered. ``tests/unit/test_architecture.py``
loads this file by path: one copy of the logic. ``python scripts/import_graph.py [--cycles] [--layers]``.

Edges: every explicit ``import`` / ``from ... import`` of a z1data module, module-level or inside a function (a
lazy import still runs, only later), relative ones included; ``from z1data.a import b`` is ``z1data.a.b`` when
that module exists, else ``z1data.a`` (its ``__init__``). Not edges: the body of ``if TYPE_CHECKING:`` (never
executed, so no runtime cycle), the implicit run of parent packages' ``__init__`` (it would make every factory
in an ``__init__`` look cyclic), and ``importlib.import_module`` calls (invisible to ``ast``).
"""

from __future__ import annotations

import argparse
import ast
from collections import deque
from collections.abc import Container, Iterator
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "z1data"


class Edge(NamedTuple):
    """One import site: ``src`` imports ``dst`` at ``path:line``; ``lazy`` when it sits inside a function."""

    src: str
    dst: str
    path: str
    line: int
    lazy: bool = False


Graph = dict[str, list[Edge]]  # every module -> its import sites of other z1data modules


def package_files(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Every ``.py`` file of the package, sorted, caches excluded."""
    return sorted(p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(tree: ast.Module) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement outside ``if TYPE_CHECKING:`` bodies, with whether it is inside a function."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, lazy = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, lazy
            continue
        lazy = lazy or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        test = node.test if isinstance(node, ast.If) else None
        skip_body = "TYPE_CHECKING" in (getattr(test, "id", None), getattr(test, "attr", None))
        stack.extend((child, lazy) for child in (node.orelse if skip_body else ast.iter_child_nodes(node)))


def _targets(node: ast.Import | ast.ImportFrom, src: str, is_pkg: bool, modules: Container[str]) -> set[str]:
    """The package modules one statement imports: each name's longest prefix that is one (``a.func`` -> ``a``)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: strip level-1 packages off the importer's own package
            package = src.split(".") if is_pkg else src.split(".")[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, *([node.module] if node.module else [])])
        names = [f"{base}.{alias.name}" for alias in node.names]  # "x.*" resolves to x itself
    targets = set()
    for parts in (name.split(".") for name in names):
        while parts and ".".join(parts) not in modules:
            parts.pop()
        targets.add(".".join(parts))
    return targets - {""}


def build_graph(package_dir: Path = PACKAGE_DIR) -> Graph:
    """Parse every module of the package once and collect its explicit imports of package modules."""
    top = package_dir.parent
    files = {".".join(p.relative_to(top).parts)[:-3].removesuffix(".__init__"): p for p in package_files(package_dir)}
    graph: Graph = {}
    for src, path in sorted(files.items()):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        rel, is_pkg = path.relative_to(top).as_posix(), path.name == "__init__.py"
        edges = {
            Edge(src, dst, rel, n.lineno, lazy) for n, lazy in _imports(tree) for dst in _targets(n, src, is_pkg, files)
        }
        graph[src] = sorted(edges)  # by dst, then line: src and path are fixed
    return graph


def _adjacency(graph: Graph) -> dict[str, list[str]]:
    return {src: sorted({e.dst for e in edges}) for src, edges in graph.items()}


def strongly_connected(adj: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's SCCs, iterative; components come out dependencies first (reverse topological order)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    components: list[list[str]] = []
    work: list[tuple[str, Iterator[str]]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        work.append((node, iter(adj.get(node, ()))))

    for root in (node for node in sorted(adj) if node not in index):
        visit(root)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    visit(nxt)
                    break
                if nxt in stack:  # a linear scan, fine for a few hundred modules
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:  # node roots a component: everything above it on the stack
                    at = stack.index(node)
                    component, stack[at:] = stack[at:], []
                    components.append(sorted(component))
    return components


def _shortest_cycle(adj: dict[str, list[str]], start: str, members: set[str]) -> list[str]:
    """Breadth-first from ``start`` back to itself within one component: ``[start, ..., start]``."""
    queue, seen = deque([[start]]), {start}
    while queue:
        path = queue.popleft()
        for nxt in adj.get(path[-1], ()):
            if nxt == start and len(path) > 1:  # a self-import is reported on its own
                return [*path, start]
            if nxt in members and nxt not in seen:
                seen.add(nxt)
                queue.append([*path, nxt])
    raise ValueError(f"{start} is on no cycle within {sorted(members)}")


def find_cycles(graph: Graph) -> list[list[str]]:
    """Self-imports, then for each component of size > 1 shortest cycles until every member is on one."""
    adj = _adjacency(graph)
    cycles = [[node, node] for node in sorted(adj) if node in adj[node]]
    for component in (c for c in strongly_connected(adj) if len(c) > 1):
        for start in component:
            if not any(start in cycle for cycle in cycles if len(cycle) > 2):  # self-imports don't cover
                cycles.append(_shortest_cycle(adj, start, set(component)))
    return cycles


def _sites(edges: list[Edge], dst: str) -> str:
    return ", ".join(f"{e.path}:{e.line}{' (in function)' if e.lazy else ''}" for e in edges if e.dst == dst)


def format_cycle(cycle: list[str], graph: Graph) -> str:
    """``a -> b -> a`` followed by the import site(s) of each edge."""
    sites = [f"    {src} -> {dst}: {_sites(graph.get(src, []), dst)}" for src, dst in pairwise(cycle)]
    return "\n".join([" -> ".join(cycle), *sites])


def layers(graph: Graph) -> dict[str, int]:
    """Layer of each module: 0 imports no package module, else 1 + the highest layer it imports (cycles merged)."""
    adj = _adjacency(graph)
    layer: dict[str, int] = {}
    for component in strongly_connected(adj):
        deps = [layer[d] for n in component for d in adj.get(n, ()) if d not in component]
        layer.update(dict.fromkeys(component, 1 + max(deps, default=-1)))
    return layer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Static import graph of z1data (see the module docstring).")
    parser.add_argument("--cycles", action="store_true", help="print the import cycles; exit 1 if any")
    parser.add_argument("--layers", action="store_true", help="print the modules grouped by layer")
    args = parser.parse_args(argv)
    graph = build_graph()
    for src, edges in graph.items() if not (args.cycles or args.layers) else ():
        print(src, *(f"    -> {dst}  ({_sites(edges, dst)})" for dst in sorted({e.dst for e in edges})), sep="\n")
    if args.layers:
        by_layer = layers(graph)
        for level in sorted(set(by_layer.values())):
            print(f"layer {level}: {', '.join(sorted(m for m, v in by_layer.items() if v == level))}")
    cycles = find_cycles(graph) if args.cycles else []
    if args.cycles:
        print("\n".join(format_cycle(c, graph) for c in cycles) if cycles else "no import cycles")
    return 1 if cycles else 0


if __name__ == "__main__":
    raise SystemExit(main())
