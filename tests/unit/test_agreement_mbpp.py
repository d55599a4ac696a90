"""z1data's MBPP verdicts agree with a plain MBPP runner: one Python process running the asserts.

Reference: ``solution + "\\n" + test_setup_code + "\\n" + "\\n".join(test_list)`` written to a file and run by
``python -I`` in a subprocess; pass = exit status 0. That is how the MBPP asserts are meant to run: one
program, one namespace. The setup runs after the solution because real rows need it: MBPP 927's setup
instantiates the ``Node`` class that the reference ``code`` defines, so setup code cannot run first.
z1data judges ``mbpp_problem(row)`` (the ``full`` columns, ``test_list`` only) with ``judge``.

Rows are shaped exactly like the ``full`` config of ``google-research-datasets/mbpp`` (``task_id`` int,
``text``, ``code``, ``test_list``, ``test_setup_code``, ``challenge_test_list``). Where a real MBPP task
shows the class, the row is that task (text, asserts and setup as in ``mbpp.jsonl``; code line endings are
the dataset's ``\\r\\n``, other whitespace may differ): 927 ``max_height`` and 367 ``is_tree_balanced``
(setup builds a ``Node`` tree), 601 ``max_chain_length`` (asserts build ``Pair`` objects in a list), 533
``remove_datatype`` (a type passed as an argument), 349 ``check`` (the function under test is named
``check``). Rows with ``task_id`` >= 10001 are written for this test (no MBPP task recalled that shows the
class): set iteration order, ``from __future__ import annotations`` leaking into the solution, results that
are objects of the setup's classes. Every row has a correct solution (passes both) and a wrong one (fails
both). Separately, a result with an always-true ``__eq__`` fools the plain runner but must fail in z1data.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from z1data.judge import judge
from z1data.sandbox import Limits, make_sandbox
from z1data.sources.mbpp import mbpp_problem

LIMITS = Limits(time_s=5.0)


def row(task_id: int, text: str, code: str, tests: list[str], setup: str = "") -> dict[str, Any]:
    return {
        "task_id": task_id,
        "text": text,
        "code": code,
        "test_list": tests,
        "test_setup_code": setup,
        "challenge_test_list": [],
    }


def plain_mbpp(r: dict[str, Any], solution: str) -> tuple[bool, str]:
    """The reference: solution, setup and asserts as one program in one ``python -I`` process."""
    program = solution + "\n" + r["test_setup_code"] + "\n" + "\n".join(r["test_list"]) + "\n"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "prog.py").write_text(program)
        try:
            proc = subprocess.run(
                [sys.executable, "-I", "prog.py"], cwd=tmp, capture_output=True, text=True, timeout=10
            )
        except subprocess.TimeoutExpired:
            return False, "timed out"
    return proc.returncode == 0, proc.stderr.strip().rsplit("\n", 1)[-1]


def one_process_value(setup: str, expr: str) -> str:
    """``repr(expr)`` as one fresh Python process computes it after ``setup``: the one-process truth."""
    proc = subprocess.run(
        [sys.executable, "-I", "-c", f"{setup}\nprint(repr({expr}))"], capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


# ---------------------------------------------------------------- real MBPP rows
NODE = (
    "class Node: \r\n\tdef __init__(self, data): \r\n\t\tself.data = data \r\n"
    "\t\tself.left = None\r\n\t\tself.right = None\r\n"
)
MAX_HEIGHT = row(
    927,
    "Write a function to calculate the height of the given binary tree.",
    NODE + "def max_height(node): \r\n\tif node is None: \r\n\t\treturn 0 ; \r\n\telse : \r\n"
    "\t\tleft_height = max_height(node.left) \r\n\t\tright_height = max_height(node.right) \r\n"
    "\t\tif (left_height > right_height): \r\n\t\t\treturn left_height+1\r\n\t\telse: \r\n\t\t\treturn right_height+1",
    ["assert (max_height(root)) == 3", "assert (max_height(root1)) == 5 ", "assert (max_height(root2)) == 4"],
    "root = Node(1) \r\nroot.left = Node(2) \r\nroot.right = Node(3) \r\nroot.left.left = Node(4) \r\n"
    "root.left.right = Node(5) \r\nroot1 = Node(1);  \r\nroot1.left = Node(2);  \r\nroot1.right = Node(3);  \r\n"
    "root1.left.left = Node(4);  \r\nroot1.right.left = Node(5);  \r\nroot1.right.right = Node(6);  \r\n"
    "root1.right.right.right= Node(7);  \r\nroot1.right.right.right.right = Node(8)\r\nroot2 = Node(1) \r\n"
    "root2.left = Node(2) \r\nroot2.right = Node(3) \r\nroot2.left.left = Node(4) \r\nroot2.left.right = Node(5)\r\n"
    "root2.left.left.left = Node(6)\r\nroot2.left.left.right = Node(7)",
)
BALANCED = row(
    367,
    "Write a function to check if a binary tree is balanced or not.",
    NODE + "def get_height(root): \r\n\tif root is None: \r\n\t\treturn 0\r\n"
    "\treturn max(get_height(root.left), get_height(root.right)) + 1\r\ndef is_tree_balanced(root): \r\n"
    "\tif root is None: \r\n\t\treturn True\r\n\tlh = get_height(root.left) \r\n\trh = get_height(root.right) \r\n"
    "\tif (abs(lh - rh) <= 1) and is_tree_balanced( \r\n\troot.left) is True and "
    "is_tree_balanced( root.right) is True: \r\n\t\treturn True\r\n\treturn False",
    [
        "assert is_tree_balanced(root) == False",
        "assert is_tree_balanced(root1) == True",
        "assert is_tree_balanced(root2) == False ",
    ],
    "root = Node(1) \r\nroot.left = Node(2) \r\nroot.right = Node(3) \r\nroot.left.left = Node(4) \r\n"
    "root.left.right = Node(5) \r\nroot.left.left.left = Node(8) \r\nroot1 = Node(1) \r\nroot1.left = Node(2) \r\n"
    "root1.right = Node(3) \r\nroot1.left.left = Node(4) \r\nroot1.left.right = Node(5) \r\n"
    "root1.right.left = Node(6) \r\n"
    "root1.left.left.left = Node(7)\r\nroot2 = Node(1) \r\nroot2.left = Node(2) \r\nroot2.right = Node(3) \r\n"
    "root2.left.left = Node(4) \r\nroot2.left.right = Node(5)\r\nroot2.left.left.left = Node(7)",
)
PAIR = "class Pair(object): \r\n\tdef __init__(self, a, b): \r\n\t\tself.a = a \r\n\t\tself.b = b \r\n"
CHAIN = row(
    601,
    "Write a function to find the longest chain which can be formed from the given set of pairs.",
    PAIR
    + "def max_chain_length(arr, n): \r\n\tmax = 0\r\n\tmcl = [1 for i in range(n)] \r\n\tfor i in range(1, n): \r\n"
    "\t\tfor j in range(0, i): \r\n\t\t\tif (arr[i].a > arr[j].b and\r\n\t\t\t\tmcl[i] < mcl[j] + 1): \r\n"
    "\t\t\t\tmcl[i] = mcl[j] + 1\r\n\tfor i in range(n): \r\n\t\tif (max < mcl[i]): \r\n"
    "\t\t\tmax = mcl[i] \r\n\treturn max",
    [
        "assert max_chain_length([Pair(5, 24), Pair(15, 25),Pair(27, 40), Pair(50, 60)], 4) == 3",
        "assert max_chain_length([Pair(1, 2), Pair(3, 4),Pair(5, 6), Pair(7, 8)], 4) == 4",
        "assert max_chain_length([Pair(19, 10), Pair(11, 12),Pair(13, 14), Pair(15, 16), Pair(31, 54)], 5) == 5",
    ],
)
DATATYPE = row(
    533,
    "Write a function to remove particular data type elements from the given tuple.",
    "def remove_datatype(test_tuple, data_type):\r\n  res = []\r\n  for ele in test_tuple:\r\n"
    "    if not isinstance(ele, data_type):\r\n      res.append(ele)\r\n  return (res) ",
    [
        "assert remove_datatype((4, 5, 4, 7.7, 1.2), int) == [7.7, 1.2]",
        'assert remove_datatype((7, 8, 9, "SR"), str) == [7, 8, 9]',
        "assert remove_datatype((7, 1.1, 2, 2.2), float) == [7, 2]",
    ],
)
BINARY = row(
    349,
    "Write a python function to check whether the given string is a binary string or not.",
    "def check(string) :\r\n    p = set(string) \r\n    s = {'0', '1'} \r\n"
    "    if s == p or p == {'0'} or p == {'1'}: \r\n        return (\"Yes\") \r\n"
    '    else : \r\n        return ("No") ',
    ['assert check("01010101010") == "Yes"', 'assert check("name0") == "No"', 'assert check("101") == "Yes"'],
)

# ---------------------------------------------------------------- rows written for this test
# The setup leaves {1, 64} in a set grown to 128+ slots: it iterates (1, 64) in any process (int hashes do not
# depend on PYTHONHASHSEED), but a set rebuilt from those values iterates (64, 1). The expected literal is what
# one fresh Python process computes, so the row states the one-process truth.
INT_SETUP = "s1 = set(range(1, 100))\ns1 -= set(range(2, 64))\ns1 -= set(range(65, 100))"
INT_ORDER = row(
    10001,
    "Write a function to convert the given set into a tuple.",
    "def set_to_tuple(s):\r\n    return tuple(s)",
    [f"assert set_to_tuple(s1) == {one_process_value(INT_SETUP, 'tuple(s1)')}"],
    INT_SETUP,
)
# String hashes are salted per process, so a literal cannot hold the order: the assert compares with the
# caller's own iteration of the same set object, which one process always agrees with.
WORDS = "words = {'kiwi', 'apple', 'banana', 'cherry', 'date', 'elder', 'fig', 'grape', 'lemon', 'mango', 'pear'}"
STR_ORDER = row(
    10002,
    "Write a function to convert the given set of words into a tuple.",
    "def words_to_tuple(ws):\r\n    return tuple(ws)",
    ["assert words_to_tuple(words) == tuple(words)", "assert len(words_to_tuple(words)) == 11"],
    WORDS,
)
JOIN_ORDER = row(
    10003,
    "Write a function to join the words of the given set with spaces.",
    "def join_words(ws):\r\n    out = []\r\n    for w in ws:\r\n        out.append(w)\r\n    return ' '.join(out)",
    ["assert join_words(words) == ' '.join(words)"],
    WORDS,
)
DOUBLE = row(
    10004,
    "Write a function to double the given number.",
    "def double(x: int) -> int:\r\n    return 2 * x",
    ["assert double(2) == 4", "assert double(-3) == -6"],
)
SETUP_PAIR = (
    "class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
    "    def __eq__(self, other):\n        return isinstance(other, Pair) and (self.a, self.b) == (other.a, other.b)\n"
    "    def __repr__(self):\n        return f'Pair({self.a}, {self.b})'"
)
SWAP = row(
    10005,
    "Write a function to swap the two members of the given pair.",
    "def swap_pair(p):\r\n    return Pair(p.b, p.a)",
    ["assert swap_pair(Pair(1, 2)) == Pair(2, 1)", "assert swap_pair(Pair(5, 7)) == Pair(7, 5)"],
    SETUP_PAIR,
)
LARGEST = row(
    10006,
    "Write a function to find the pair with the largest second member.",
    "def largest_pair(pairs):\r\n    return max(pairs, key=lambda p: p.b)",
    ["assert largest_pair([Pair(1, 2), Pair(3, 1), Pair(0, 9)]) == Pair(0, 9)"],
    SETUP_PAIR,
)

# (id, row, solution, expected verdict of both judges)
CASES = [
    ("927-node-tree", MAX_HEIGHT, MAX_HEIGHT["code"], True),
    (
        "927-node-tree-wrong",
        MAX_HEIGHT,
        NODE + "def max_height(node):\n\treturn 0 if node is None else max_height(node.left) + 1",
        False,
    ),
    ("367-node-tree", BALANCED, BALANCED["code"], True),
    ("367-node-tree-wrong", BALANCED, NODE + "def is_tree_balanced(root):\n\treturn True", False),
    ("601-pair-list", CHAIN, CHAIN["code"], True),
    ("601-pair-list-wrong", CHAIN, PAIR + "def max_chain_length(arr, n):\n\treturn n", False),
    ("533-type-argument", DATATYPE, DATATYPE["code"], True),
    (
        "533-type-argument-wrong",
        DATATYPE,
        "def remove_datatype(t, dt):\n    return [e for e in t if isinstance(e, dt)]",
        False,
    ),
    ("349-named-check", BINARY, BINARY["code"], True),
    ("349-named-check-wrong", BINARY, "def check(string):\n    return 'Yes'", False),
    ("set-order-int", INT_ORDER, INT_ORDER["code"], True),
    ("set-order-int-wrong", INT_ORDER, "def set_to_tuple(s):\n    return tuple(sorted(s, reverse=True))", False),
    ("set-order-str", STR_ORDER, STR_ORDER["code"], True),
    ("set-order-str-wrong", STR_ORDER, "def words_to_tuple(ws):\n    return tuple(sorted(ws))", False),
    ("set-iter-str", JOIN_ORDER, JOIN_ORDER["code"], True),
    ("set-iter-str-wrong", JOIN_ORDER, "def join_words(ws):\n    return ' '.join(sorted(ws))", False),
    ("annotations", DOUBLE, DOUBLE["code"], True),
    ("annotations-undefined-name", DOUBLE, "def double(x: Undefined) -> int:\n    return 2 * x", False),
    ("setup-class-result", SWAP, SWAP["code"], True),
    ("setup-class-result-wrong", SWAP, "def swap_pair(p):\n    return Pair(p.a, p.b)", False),
    ("setup-class-argument-result", LARGEST, LARGEST["code"], True),
    (
        "setup-class-argument-result-wrong",
        LARGEST,
        "def largest_pair(pairs):\n    return min(pairs, key=lambda p: p.b)",
        False,
    ),
]

LIAR = "class Anything:\n    def __eq__(self, other):\n        return True\n\n\n"
TAMPER = [
    ("plain-value", DOUBLE, LIAR + "def double(x):\n    return Anything()"),
    ("setup-objects-as-arguments", MAX_HEIGHT, LIAR + NODE + "def max_height(node):\n    return Anything()"),
    ("setup-class", SWAP, LIAR + "def swap_pair(p):\n    return Anything()"),
]


@pytest.fixture(scope="module")
def sandbox():
    with make_sandbox() as sb:
        yield sb


def z1data(sandbox, r: dict[str, Any], solution: str) -> tuple[bool, str]:
    v = judge(mbpp_problem(r), solution, "s", sandbox, LIMITS)
    return v.passed, f"{v.status}: {v.tests[0].detail}" if v.tests and v.tests[0].detail else v.status


@pytest.mark.parametrize(("r", "solution", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_z1data_agrees_with_plain_mbpp_runner(sandbox, r: dict[str, Any], solution: str, expected: bool) -> None:
    ref_ok, ref_detail = plain_mbpp(r, solution)
    assert ref_ok is expected, f"the reference itself: {ref_detail}"
    ours, detail = z1data(sandbox, r, solution)
    assert ours is ref_ok, f"z1data {detail} vs plain runner {'pass' if ref_ok else 'FAIL: ' + ref_detail}"


def test_future_annotations_do_not_leak_into_the_solution(sandbox) -> None:
    """The reference evaluates annotations at ``def`` time: an undefined name in one is a NameError."""
    bad = "def double(x: Undefined) -> int:\n    return 2 * x"
    ref_ok, ref_detail = plain_mbpp(DOUBLE, bad)
    ours, detail = z1data(sandbox, DOUBLE, bad)
    assert (ref_ok, "NameError" in ref_detail) == (False, True), ref_detail
    assert (ours, "NameError" in detail) == (False, True), detail


@pytest.mark.parametrize(("r", "solution"), [pytest.param(*c[1:], id=c[0]) for c in TAMPER])
def test_always_equal_result_fails_in_z1data(sandbox, r: dict[str, Any], solution: str) -> None:
    """Deliberate disagreement: ``Anything() == expected`` is True, so the one-process runner passes it.
    z1data must compare what the solution computed, never let the solution's own ``__eq__`` decide: a lying
    ``__eq__`` must not turn into a pass."""
    assert plain_mbpp(r, solution)[0], "the plain runner is fooled by the lying __eq__"
    ours, detail = z1data(sandbox, r, solution)
    assert not ours, detail
