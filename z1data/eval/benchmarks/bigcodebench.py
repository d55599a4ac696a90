"""BigCodeBench as Z1 ran it: by Hub name (``bigcode/bigcodebench``, ``bigcode/bigcodebench-hard``; splits are
versions such as ``v0.1.4``) or a local file. ``variant``: ``instruct`` (natural-language task) or ``complete``
(docstring stub). Rows (all strings): ``task_id``, ``complete_prompt``, ``instruct_prompt``, ``canonical_solution``,
``code_prompt``, ``test`` (a ``unittest`` class ``TestCases``), ``entry_point``, ``doc_struct``, ``libs``.

Z1's setup (efficientscaling/Z1, ``eval/code_evaluation/bigcodebench/``), reproduced here:

* prompt (``model.py: make_chat_prompt``): system "Please reason step by step.", a user turn asking for a
  self-contained script with the task in a bare fence (``ASK``), and an assistant turn pre-filled up to an open
  ``python`` fence (``PREFILL``), rendered by cutting the chat template at a marker inside that turn. Here the
  prefill follows the template's generation prompt (``Benchmark.prefill``), which is the same text for
  ChatML templates (Qwen2.5, Z1-7B); in reference mode ``<think>`` follows it, as ``reasoning.py`` appends it;
* stop strings (``model.py``: the module's ``EOS`` list plus ``GeneralVllmDecoder``'s closing fence): ``STOP``,
  used for both STW passes as ``thinking_generate`` reuses one ``SamplingParams``;
* code: tabs become four spaces (``VllmDecoder.codegen``), then bigcodebench's ``sanitize`` (``test.sh`` runs
  ``bigcodebench.sanitize --calibrate``): the longest run of lines that parses, reduced to its imports and the
  definitions the entry point reaches (``sanitize`` below); ``evaluate.py`` ("sanitized-calibrated") then runs
  ``code_prompt + "\\n    pass\\n" + solution``, so the prompt's imports and constants are defined (``prepare``).

Tests: the row's ``TestCases`` as a unittest file run by the sandbox's driver (``Tests(file=...)``), with
``from solution import <entry_point>``. BigCodeBench's harness runs the test in the solution's module, so tests
may use names the prompt defined (``pd``, ``np``, constants, helper classes): the file starts with the
``code_prompt``'s preamble (everything before the entry point's ``def``). Most tasks import third-party
libraries (pandas, numpy, matplotlib...): set the eval's ``sandbox_env`` to an environment with BigCodeBench's
requirements (docs/eval.md). Caveat of the two-process design: a test that seeds ``random`` / ``np.random`` or
``mock.patch``-es a library changes the driver's modules, not the solution's.
"""

from __future__ import annotations

import ast
import codeop
import warnings
from typing import Any, ClassVar

from z1data.eval.benchmarks.base import CodeBenchmark, Item
from z1data.records import FileTests, Problem, Tests

ASK = "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
PREFILL = (
    "Below is a Python script with a self-contained function that solves the problem and passes corresponding "
    "tests:\n```python\n"
)
STOP = ("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint(", "\n```\n")


class BigCodeBench(CodeBenchmark):
    name = "bigcodebench"
    default_source = "bigcode/bigcodebench"
    default_split = "v0.1.4"
    stop = STOP
    # prefill: Z1's pre-filled assistant turn (False: the model opens its own code block)
    options: ClassVar[dict[str, Any]] = {"variant": "instruct", "prefill": True}

    def items(self) -> list[Item]:
        if self.opts["variant"] not in ("instruct", "complete"):
            raise ValueError("bigcodebench: variant must be 'instruct' or 'complete'")
        return [bcb_item(r, self.opts["variant"]) for r in self.rows()]

    def prefill(self, item: Item) -> str:
        return PREFILL if self.opts["prefill"] else ""

    def extract(self, item: Item, response: str) -> str | None:
        return sanitize(response.replace("\t", "    "), entry_point(item)) or None

    def prepare(self, item: Item, code: str) -> str:
        """Z1's calibrated solution: the stub (imports, constants, ``def``) with a ``pass`` body, then the code."""
        stub = item.target.starter_code
        return f"{stub}\n    pass\n{code}" if stub and stub.strip() else code


def bcb_item(row: dict[str, Any], variant: str) -> Item:
    prompt = row["instruct_prompt"] if variant == "instruct" else row["complete_prompt"]
    question = f"{ASK}```\n{prompt.strip()}\n```\n"
    entry = row.get("entry_point") or "task_func"
    test_file = f"{preamble(row['code_prompt'], entry)}from solution import {entry}\n\n{row['test']}"
    pid = str(row["task_id"])
    # BigCodeBench's harness runs the tests in the solution's process: many tests write files the solution
    # reads, patch modules it calls or seed its random state, which a separate driver process would not share
    # (helper measurement: 353 of 820 canonical solutions fail otherwise). Not tamper-proof; an eval, not data.
    tests = Tests(file=FileTests(test_file, "unittest", "solution", same_process=True))
    return Item(pid, question, Problem(pid, question, tests, "bigcodebench", starter_code=row["code_prompt"]))


def entry_point(item: Item) -> str:
    """The function the tests import (the line ``from solution import <name>`` of the test file)."""
    f = item.target.tests.file
    line = next((ln for ln in f.code.splitlines() if ln.startswith("from solution import ")), "") if f else ""
    return line.removeprefix("from solution import ").strip() or "task_func"


def preamble(code_prompt: str, entry: str) -> str:
    """The ``code_prompt`` up to the entry point's ``def`` (imports, constants, helpers); its import lines when
    the stub does not parse."""
    lines = code_prompt.splitlines(keepends=True)
    try:
        tree = ast.parse(code_prompt + "\n    pass\n")
    except SyntaxError:
        return "".join(ln for ln in lines if ln.startswith(("import ", "from ")))
    defs = (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == entry)
    node = next(defs, None)
    return code_prompt + "\n" if node is None else "".join(lines[: _start(node) - 1])


# ---------------------------------------------------------------- bigcodebench's sanitize, with ast for tree-sitter
def sanitize(text: str, entry: str) -> str:
    """``bigcodebench/sanitize.py: sanitize`` (no_module=False): the longest parseable run of lines
    (``code_extract``), then its imports and the top-level classes, functions and assignments that the entry point
    reaches by name (the first definition of a name wins), in order; other statements (``if __name__``, calls,
    loops) are dropped. Unlike tree-sitter's walk, decorated definitions are kept."""
    code = code_extract(text.strip())
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return ""
    imports: list[ast.stmt] = []
    defs: list[tuple[str, ast.stmt]] = []
    seen: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(node)
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = node.name
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            target = node.targets[0] if isinstance(node, ast.Assign) else node.target
            name = next((n.id for n in ast.walk(target) if isinstance(n, ast.Name)), "")
        else:
            continue
        if name and name not in seen:
            seen.add(name)
            defs.append((name, node))
    deps = {name: _identifiers(node) for name, node in defs}
    reach, queue = {entry}, [entry]
    while queue:
        for dep in deps.get(queue.pop(0), ()):
            if dep not in reach:
                reach.add(dep)
                queue.append(dep)
    kept = [*imports, *(node for name, node in defs if name in reach)]
    out = "\n".join(_source(code, n) for n in sorted(kept, key=_start))
    lines = out.splitlines()  # sanitize's last step: drop trailing top-level lines that mention the entry point
    cut = None
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith(" "):
            break
        if entry in lines[i]:
            cut = i
    return "\n".join(lines[:cut]) if cut is not None else out


def _start(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(d.lineno for d in decorators)])


def _source(code: str, node: ast.stmt) -> str:
    """The node's text, with its decorator lines (``get_source_segment`` starts at ``def``)."""
    above = code.split("\n")[_start(node) - 1 : node.lineno - 1]
    return "\n".join([*above, ast.get_source_segment(code, node) or ""])


def _identifiers(node: ast.AST) -> set[str]:
    """Every identifier in ``node``, as tree-sitter's ``identifier`` nodes: names, attributes, parameters."""
    out: set[str] = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
        elif isinstance(n, ast.arg):
            out.add(n.arg)
        elif isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            out.add(n.name)
    return out


def code_extract(text: str) -> str:
    """``bigcodebench/sanitize.py: code_extract``: the run of two or more lines that parses and has the most
    non-blank lines (the first such run), else the first line. Searched with two prunings that keep the answer:
    a start line that no continuation makes valid (``codeop`` says invalid) starts no run, and a run stops
    growing at the first line that makes it invalid (no later line can repair Python source)."""
    lines = text.split("\n")
    counts = [0]
    for ln in lines:
        counts.append(counts[-1] + bool(ln.strip()))
    best, pair = 0, (0, 0)
    for i in range(len(lines)):
        if counts[-1] - counts[i] <= best:
            break  # no run starting here or later can have more lines
        if not _viable("\n".join(lines[i : i + 1])):
            continue
        for j in range(i + 1, len(lines)):
            chunk = "\n".join(lines[i : j + 1])
            if _parses(chunk):
                if counts[j + 1] - counts[i] > best:
                    best, pair = counts[j + 1] - counts[i], (i, j)
            elif not _viable(chunk):
                break
    return "\n".join(lines[pair[0] : pair[1] + 1])


def _parses(code: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(code)
        return True
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False


def _viable(code: str) -> bool:
    """Valid or incomplete Python (more lines could complete it), as the interactive interpreter decides."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            codeop.compile_command(code, "<code>", "exec")
        return True
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError):
        return False
