"""Guards on the package's shape: no import cycles between z1data modules, no module over 400 lines.

Why: a cycle makes import order matter (a half-initialised module fails, sometimes only on a lazy path taken
in production), and oversized modules are where cycles and tangles grow. Everything is read with ``ast`` by
``scripts/import_graph.py`` (loaded here by path, one copy of the logic): no z1data module is imported, so
this runs in well under a second without torch or vllm. Rules for what counts as an import edge, e.g. that
``if TYPE_CHECKING:`` imports do not (they never execute, so they cannot form a runtime cycle), are in that
script's docstring.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
PACKAGE_DIR = REPO / "z1data"
MAX_LINES = 400


def _load_import_graph() -> ModuleType:
    """``scripts/`` is no package: load the script from its path (registered so NamedTuple can find it)."""
    spec = importlib.util.spec_from_file_location("z1data_import_graph", REPO / "scripts" / "import_graph.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ig = _load_import_graph()


def _graph(*edges: tuple[str, str]) -> dict[str, list]:
    """A synthetic graph from ``(src, dst)`` pairs, each edge at a fake ``src.py:<n>``."""
    graph: dict[str, list] = {}
    for n, (src, dst) in enumerate(edges, 1):
        graph.setdefault(dst, [])
        graph.setdefault(src, []).append(ig.Edge(src, dst, f"{src}.py", n))
    return graph


# --- the guards -------------------------------------------------------------------------------------------


def test_no_import_cycles() -> None:
    graph = ig.build_graph(PACKAGE_DIR)
    cycles = ig.find_cycles(graph)
    report = "\n".join(ig.format_cycle(cycle, graph) for cycle in cycles)
    assert not cycles, f"{len(cycles)} import cycle(s) in z1data (scripts/import_graph.py --cycles):\n{report}"


def test_no_module_over_400_lines() -> None:
    counts = {
        p.relative_to(REPO).as_posix(): len(p.read_text(encoding="utf-8").splitlines())
        for p in ig.package_files(PACKAGE_DIR)
    }
    over = {path: n for path, n in counts.items() if n > MAX_LINES}
    assert counts, "no module found: wrong package path?"
    assert not over, f"modules over {MAX_LINES} lines: " + ", ".join(f"{p} ({n})" for p, n in sorted(over.items()))


def test_real_graph_is_not_vacuous() -> None:
    """A wrong path or a resolver that drops everything would make the cycle guard pass on nothing."""
    graph = ig.build_graph(PACKAGE_DIR)
    edges = [e for module_edges in graph.values() for e in module_edges]
    assert {"z1data", "z1data.cli"} <= set(graph) and len(graph) > 20
    assert len(edges) > 50 and {e.lazy for e in edges} == {True, False}


# --- the cycle finder on synthetic graphs -----------------------------------------------------------------


def test_two_cycle_is_found_with_sites() -> None:
    graph = _graph(("a", "b"), ("b", "a"))
    assert ig.find_cycles(graph) == [["a", "b", "a"]]
    assert ig.format_cycle(["a", "b", "a"], graph).splitlines() == [
        "a -> b -> a",
        "    a -> b: a.py:1",
        "    b -> a: b.py:2",
    ]


def test_chain_has_no_cycle() -> None:
    assert ig.find_cycles(_graph(("a", "b"), ("b", "c"))) == []
    assert ig.layers(_graph(("a", "b"), ("b", "c"))) == {"c": 0, "b": 1, "a": 2}


def test_self_import_is_a_cycle() -> None:
    assert ig.find_cycles(_graph(("a", "a"), ("a", "b"))) == [["a", "a"]]


def test_every_member_of_a_component_is_on_a_reported_cycle() -> None:
    # one component {a, b, c, d}: a -> b -> a and b -> c -> d -> b; e hangs off it, acyclic
    cycles = ig.find_cycles(_graph(("a", "b"), ("b", "a"), ("b", "c"), ("c", "d"), ("d", "b"), ("d", "e")))
    assert {node for cycle in cycles for node in cycle} == {"a", "b", "c", "d"}
    assert all(cycle[0] == cycle[-1] for cycle in cycles)


# --- the graph builder on a synthetic package -------------------------------------------------------------


def test_builder_resolves_every_import_form(tmp_path: Path) -> None:
    files = {
        "__init__.py": "",
        "a.py": "from pkg import b\n\ndef f():\n    from .c import x\n",  # lazy import still counts
        "b.py": "import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n",
        "c.py": "from pkg.sub import d\nfrom pkg.sub import helper\nimport pkg.sub.d as dd\n",
        "sub/__init__.py": "from .. import a\n",  # relative, two levels
        "sub/d.py": "from . import helper\nfrom .d import *\n",  # name in __init__; self-import
    }
    for name, text in files.items():
        (tmp_path / "pkg" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / name).write_text(text)
    graph = ig.build_graph(tmp_path / "pkg")
    assert {src: sorted({e.dst for e in edges}) for src, edges in graph.items()} == {
        "pkg": [],
        "pkg.a": ["pkg.b", "pkg.c"],
        "pkg.b": [],  # TYPE_CHECKING only: not a runtime dependency
        "pkg.c": ["pkg.sub", "pkg.sub.d"],
        "pkg.sub": ["pkg.a"],
        "pkg.sub.d": ["pkg.sub", "pkg.sub.d"],
    }
    assert [(e.dst, e.path, e.line, e.lazy) for e in graph["pkg.a"]] == [
        ("pkg.b", "pkg/a.py", 1, False),
        ("pkg.c", "pkg/a.py", 4, True),
    ]
    assert ig.find_cycles(graph) == [
        ["pkg.sub.d", "pkg.sub.d"],
        ["pkg.a", "pkg.c", "pkg.sub", "pkg.a"],
        ["pkg.sub.d", "pkg.sub", "pkg.a", "pkg.c", "pkg.sub.d"],
    ]
