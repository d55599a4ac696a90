"""Hostile solutions against the check boundary (``sandbox/bridge.py``, ``plain.py``, ``filetests.py``): each
must end non-pass and leave the pool serving."""

from __future__ import annotations

import time

import pytest

from z1data.judge import judge
from z1data.records import CheckTests, FileTests, Problem
from z1data.records import Tests as Spec
from z1data.sandbox import Limits, Sandbox, make_sandbox

LIM = Limits(time_s=0.5, memory_mb=256, max_processes=32)  # wall limit: 2 s
FLIM = Limits(time_s=1.0, memory_mb=512, max_processes=32)  # test files: pytest is imported in the driver
SB: Sandbox


@pytest.fixture(scope="module", autouse=True)
def _sandbox():
    global SB
    with make_sandbox(workers=1, calibrate=False) as sandbox:
        SB = sandbox
        yield sandbox


@pytest.fixture(autouse=True)
def _still_serving():
    yield
    assert judge(SQUARE, "def f(x):\n    return x * x", "honest", SB, LIM).passed
    assert SB.replaced == 0, "a hostile solution took a worker down"


def check(code: str, entry: str = "f", setup: str = "", starter: str | None = None) -> Problem:
    return Problem("p-check", "q", Spec(check=CheckTests(code, entry, setup=setup)), starter_code=starter)


def tfile(code: str, framework: str = "pytest") -> Problem:
    return Problem("p-file", "q", Spec(file=FileTests(code, framework=framework)))


def passes(problem: Problem, code: str, limits: Limits = LIM) -> bool:
    return judge(problem, code, "honest", SB, limits).passed


def assert_not_pass(problem: Problem, code: str, *statuses: str, limits: Limits = LIM):
    v = judge(problem, code, "hostile", SB, limits)
    assert not v.passed and v.pass_rate == 0.0, v
    if statuses:
        assert v.status in statuses, v
    return v


SQUARE = check("def check(candidate):\n    assert candidate(2) == 4\n")
# Every operator and protocol lies: equal to anything, true, close to anything, "4" as text.
LIAR = """
class Liar:
    __eq__ = __lt__ = __le__ = __gt__ = __ge__ = __contains__ = lambda s, o: True
    __ne__ = lambda s, o: False
    __sub__ = __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = lambda s, o: s
    __abs__ = __neg__ = __pos__ = lambda s: s
    __bool__ = lambda s: True
    __float__ = __round__ = lambda s, *n: 0.5
    __index__ = __int__ = lambda s: 4
    __hash__ = lambda s: hash(4)
    __str__ = __repr__ = lambda s: "4"
"""
LIAR_F = LIAR + "def f(x):\n    return Liar()\n"
FLOAT_LIAR_F = """
class F(float):
    __eq__ = __lt__ = lambda s, o: True
    __sub__ = __rsub__ = lambda s, o: F(0.0)
    __abs__ = lambda s: F(0.0)
    __hash__ = float.__hash__
def f(x):
    return F(9.0)
"""
INT_LIAR_F = FLOAT_LIAR_F.replace("(float)", "(int)").replace("float.", "int.").replace("9.0", "7")
BOOL_F = "class B:\n    def __bool__(self): return True\ndef f(x):\n    return B()\n"
NESTED_F = LIAR + "def f(x):\n    return [Liar(), (Liar(),), {'k': Liar()}, {Liar()}]\n"
CHECKS = {  # what an honest f(x) returns: check lines it passes (HumanEval's float checks under "x / 2")
    "x * x": [
        "assert candidate(2) == 4",
        "assert 4 == candidate(2)",
        "assert not candidate(2) != 4",
        "assert candidate(2) == 4.0",
        "assert candidate(2) in [4, 5]",
        "assert candidate(2) in {4}",
        "assert [candidate(2)] == [4] and (candidate(2),) == (4,)",
        "assert {'k': candidate(2)} == {'k': 4}",
        "assert (candidate(2) == 4) is True",
        "assert candidate(2) >= 4 and candidate(2) <= 4",
        "assert candidate(2) - 4 == 0",
        "assert int(candidate(2)) == 4",
        "assert max(candidate(2), 3) == 4",
        "assert isinstance(candidate(2), int) and candidate(2) == 4",
    ],
    "x / 2": [
        "assert abs(candidate(1.0) - 0.5) < 1e-6",
        "assert abs(0.5 - candidate(1.0)) < 1e-6",
        "assert math.isclose(candidate(1.0), 0.5)",
        "assert math.fabs(candidate(1.0) - 0.5) < 1e-6",
        "assert round(candidate(1.0), 6) == 0.5",
        "assert float(candidate(1.0)) == 0.5",
        "assert 0.4 < candidate(1.0) < 0.6",
    ],
    "x % 2 == 1": ["assert candidate(3) == True and candidate(4) == False"],
    "[x * x, (x * x,), {'k': x * x}, {x * x}]": ["assert candidate(2) == [4, (4,), {'k': 4}, {4}]"],
}


@pytest.mark.parametrize(("honest", "line"), [(h, line) for h, lines in CHECKS.items() for line in lines])
def test_lying_operators_decide_nothing(honest: str, line: str):
    problem = check(f"def check(candidate):\n    import math\n    {line}\n")
    assert passes(problem, f"def f(x):\n    return {honest}")
    for code in (LIAR_F, INT_LIAR_F, FLOAT_LIAR_F, BOOL_F, NESTED_F):
        assert_not_pass(problem, code, "failed", "runtime_error")


# ---------------------------------------------------------------- names the test code resolves (builtins, star imports)
HE38_PROMPT = '''def encode_cyclic(s: str):
    """returns encoded string by cycling groups of three characters."""
    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]
    groups = [(group[1:] + group[0]) if len(group) == 3 else group for group in groups]
    return "".join(groups)
def decode_cyclic(s: str):
    """takes as input string encoded with encode_cyclic function. Returns decoded string."""
'''
HE38_CHECK = """
def check(candidate):
    from random import randint, choice
    import string
    for _ in range(100):
        str = ''.join(choice(string.ascii_lowercase) for i in range(randint(10, 20)))
        encoded_str = encode_cyclic(str)
        assert candidate(encoded_str) == str
"""
HE38 = check(HE38_CHECK, "decode_cyclic", starter=HE38_PROMPT)


def test_redefining_the_prompts_helper_does_not_help():
    assert passes(HE38, HE38_PROMPT + "def decode_cyclic(s):\n    return encode_cyclic(encode_cyclic(s))\n")
    identity = "def encode_cyclic(s):\n    return s\ndef decode_cyclic(s):\n    return s\n"
    assert_not_pass(HE38, identity, "failed")
    assert_not_pass(HE38, identity.replace("return s\n", "return ''\n", 1), "failed")


HE2 = check("def check(candidate):\n    assert abs(candidate(3.5) - 0.5) < 1e-6\n")
MBPP_SET = check("assert set(f((3, 4, 5, 6))) == set((4, 5))\n")
SHADOWS = {  # a solution's top-level def named like a builtin must not replace it for the check code
    "abs": (HE2, "def abs(x):\n    return 0\ndef f(x):\n    return 9.0\n"),
    "range": (HE38, "def range(*a):\n    return []\ndef decode_cyclic(s):\n    return s\n"),
    "set": (MBPP_SET, "def set(*a):\n    return 1\ndef f(x):\n    return x\n"),
}


@pytest.mark.parametrize("name", SHADOWS)
def test_shadowing_a_builtin_the_check_code_uses(name: str):
    problem, code = SHADOWS[name]
    assert_not_pass(problem, code)


def test_star_import_never_replaces_the_test_files_imports():
    test = "import math\nfrom solution import *\n\ndef test_a():\n    assert math.isclose(f(1.0), 0.5)\n"
    assert passes(tfile(test), "def f(x):\n    return x / 2", FLIM)
    fake = "class math:\n    @staticmethod\n    def isclose(a, b):\n        return True\ndef f(x):\n    return 9.0\n"
    assert_not_pass(tfile(test), fake, limits=FLIM)


# ---------------------------------------------------------------- handle protocols answered by the solution
LEN = "class S:\n    def __len__(self):\n        return {}\n"
STR_TRICKS = [
    "class S:\n    def __str__(self): return 5\n    def __repr__(self): return None\n",
    "class T(str):\n    __eq__ = lambda s, o: True\n    __hash__ = str.__hash__\n"
    "class S:\n    __str__ = __repr__ = lambda s: T('nope')\n",
    "class S:\n    __str__ = __repr__ = lambda s: 'x' * (70 << 20)\n",  # over the reply cap
    "class S:\n    def __str__(self): raise SystemExit(0)\n    __repr__ = __str__\n",
]
DEEP = [  # S(): too deep (by far, just over the limit, in dicts) or cyclic
    "def S():\n    v = [1]\n    for _ in range(100000):\n        v = [v]\n    return v\n",
    "def S():\n    v = [1]\n    for _ in range(101):\n        v = (v,)\n    return v\n",
    "def S():\n    v = {}\n    for _ in range(5000):\n        v = {'k': v}\n    return v\n",
    "def S():\n    v = []\n    v.append(v)\n    return v\n",
]
INT_LIAR = "type('I', (int,), {'__eq__': lambda s, o: True})(7)"
PROTOCOL = {  # check, an honest f, hostile code defining S (f returns S())
    "len": (
        "len(candidate(3)) == 3",
        "[0] * x",
        [LEN.format(v) for v in ("'3'", "3.0", -1, "10**100", "2**62", INT_LIAR)],
    ),
    "str": ("str(candidate(1)) == '1' and repr(candidate(1)) == '1'", "x", STR_TRICKS),
    "deep": ("candidate(1) == [[1]]", "[[x]]", DEEP),
}


@pytest.mark.parametrize(("kind", "i"), [(k, i) for k, (_, _, codes) in PROTOCOL.items() for i in range(len(codes))])
def test_handle_protocols_that_lie(kind: str, i: int):
    test, honest, codes = PROTOCOL[kind]
    problem = check(f"def check(candidate):\n    assert {test}\n")
    assert passes(problem, f"def f(x):\n    return {honest}")
    assert_not_pass(problem, codes[i] + "def f(x):\n    return S()\n", "failed", "runtime_error", "memory")
    if kind == "str":  # pytest's report reprs the handle
        test_file = "from solution import f\n\ndef test_a():\n    assert f(1) == 1\n"
        assert_not_pass(tfile(test_file), codes[i] + "def f(x):\n    return S()\n", limits=FLIM)


INFINITE = [
    "def f(x):\n    while True:\n        yield 0",
    "class I:\n    def __iter__(self): return self\n    def __next__(self): return 0\ndef f(x):\n    return I()",
    "class I:\n    def __iter__(self): return self\n    def __next__(self): return object()\ndef f(x):\n    return I()",
    "import time\nclass I:\n    def __iter__(self): return self\n    def __next__(self): time.sleep(60)\n"
    "def f(x):\n    return I()",
]


@pytest.mark.parametrize("code", INFINITE)
def test_endless_iteration_times_out(code: str):
    for test in ("assert list(candidate(3)) == [0, 1, 2]", "for _ in candidate(3):\n        pass\n    assert False"):
        start = time.monotonic()
        assert_not_pass(check(f"def check(candidate):\n    {test}\n"), code, "timeout", "memory", "failed")
        assert time.monotonic() - start < 10  # the wall limit ends it, the judge does not hang


# The solution patches its own end of the pipe and sends whatever bytes it likes as the reply.
FORGE = """
import sys
_h = sys.modules.get("harness") or sys.modules["z1data.sandbox.harness"]
_send = _h._send
_h._send = lambda fd, msg: _h.write_frame(fd, FRAME) if "ok" in msg or "exc" in msg else _send(fd, msg)
def f(x):
    return 0
"""
FRAMES = [
    b"[" * 200_000 + b"]" * 200_000,
    b'{"ok": {"t": "obj", "v": ["check", []]}}',
    b'{"ok": {"t": "obj", "v": ["Pair", [["a", 2], ["b", 4], ["__class__", {"t": "type", "v": "int"}]]]}}',
    b'{"ok": {"t": "type", "v": "Liar"}}',
    b'{"ok": {"t": "ref", "v": 999999999}}',
    b'{"ok": {"t": "tset", "v": [8, [4, 4], [4, 5]]}}',
    b'{"status": "passed"}',
    b'{"exc": ["SkipTest", "skip me"]}',
    b"not json",
]


@pytest.mark.parametrize("frame", FRAMES)
def test_forged_replies(frame: bytes):
    setup = "class Pair:\n    def __init__(self, a, b):\n        self.a, self.b = a, b\n"
    problem = check("def check(candidate):\n    assert candidate(2) == 4\n", setup=setup)
    assert passes(problem, FORGE.replace("FRAME", repr(b'{"ok": 4}')))  # the forgery reaches the driver
    assert_not_pass(problem, FORGE.replace("FRAME", repr(frame)))


# ---------------------------------------------------------------- trusted classes (MBPP setup code)
PAIR = """
class Pair:
    def __init__(self, a, b):
        self.a, self.b = a, b
    def __eq__(self, o):
        return isinstance(o, Pair) and (self.a, self.b) == (o.a, o.b)
"""
PAIR_CHECK = check("r = make_pair(1)\nassert isinstance(r, Pair), type(r)\nassert r == Pair(1, 2)\n", "make_pair", PAIR)
OWN_PAIR = "class Pair:\n    def __init__(self, a, b): self.a, self.b = a, b\n    def __eq__(self, o): return True\n"
PAIR_SPOOFS = {
    "own class, same name": OWN_PAIR + "_P = Pair\ndef make_pair(x):\n    return _P(0, 0)\n",
    "own class at call time": "def make_pair(x):\n    " + OWN_PAIR.replace("\n", "\n    ") + "return Pair(0, 0)\n",
    "subclass of the trusted one": "def make_pair(x):\n    class Pair(globals()['Pair']):\n"
    "        def __eq__(self, o): return True\n    return Pair(0, 0)\n",
    "patched trusted __eq__": "def make_pair(x):\n    Pair.__eq__ = lambda s, o: True\n    return Pair(0, 0)\n",
    "__class__ swapped": OWN_PAIR.replace("Pair", "Liar") + "def make_pair(x):\n    p = Pair(1, 2)\n"
    "    p.__class__ = Liar\n    return p\n",
    "lying instance attributes": LIAR + "def make_pair(x):\n    p = Pair(Liar(), Liar())\n"
    "    p.__dict__['__eq__'] = lambda o: True\n    return p\n",
}


def test_trusted_class_crosses_by_value():
    assert passes(PAIR_CHECK, "def make_pair(x):\n    return Pair(x, 2 * x)\n")
    assert_not_pass(PAIR_CHECK, "def make_pair(x):\n    return Pair(x, 3)\n", "failed")


@pytest.mark.parametrize("name", PAIR_SPOOFS)
def test_spoofing_a_trusted_class(name: str):
    v = assert_not_pass(PAIR_CHECK, PAIR_SPOOFS[name], "failed")
    if "own class" in name or "subclass" in name or "swapped" in name:
        assert "RemoteRef" in v.tests[0].detail  # refused as the trusted class: it stayed a handle


# ---------------------------------------------------------------- handles passed back and called
CALLBACKS = [  # (check, what an honest f(k) returns, what a hostile one returns)
    ("g = candidate(2)\n    assert g(3) == 6", "lambda x: k * x", "lambda x: Liar()"),
    ("h = candidate(None)\n    assert candidate(h) == 1", "object() if k is None else 1", "Liar() if k is None else k"),
    (
        "p = Pair(candidate(None), 2)\n    assert candidate(p) == 3",
        "object() if k is None else 3",
        "Liar() if k is None else k.a",
    ),
    ("g = candidate(2)\n    assert g(g) == 4", "lambda x: k * k", "lambda x: x"),
]


@pytest.mark.parametrize(("test", "honest", "hostile"), CALLBACKS)
def test_handles_sent_back(test: str, honest: str, hostile: str):
    problem = check(f"def check(candidate):\n    {test}\n", setup=PAIR)
    assert passes(problem, f"def f(k):\n    return {honest}")
    assert_not_pass(problem, LIAR + f"def f(k):\n    return {hostile}", "failed", "runtime_error")


# ---------------------------------------------------------------- test files: tampering with the framework
PYTEST_FILE = (
    "from solution import f\n\n\ndef test_one():\n    assert f(2) == 4\n\n\ndef test_two():\n    assert f(3) == 31337\n"
)
UNITTEST_FILE = (
    "import unittest\nfrom solution import f\n\n\nclass T(unittest.TestCase):\n    def test_one(self):\n"
    "        self.assertEqual(f(2), 4)\n\n    def test_two(self):\n        self.assertEqual(f(3), 31337)\n"
)
TAMPER = {
    "patch pytest": """
import sys, unittest
sys.path.append("/z1/fw")  # pytest is importable in the solution's process too (patches stay there)
import pytest, _pytest.reports, _pytest.runner, filetests
_pytest.reports.BaseReport.passed = property(lambda self: True)
_pytest.reports.BaseReport.failed = property(lambda self: False)
_pytest.runner.call_and_report = pytest.main = unittest.TestCase.assertEqual = lambda *a, **k: None
filetests.run = filetests._pytest = filetests._unittest = lambda *a, **k: [{"name": "t", "status": "passed"}]
""",
    "fake output": "import json, sys\nprint('test_solution.py::test_two PASSED\\n2 passed in 0.01s')\n"
    "sys.stderr.write(json.dumps({'status': 'tests', 'tests': [{'name': 't', 'status': 'passed'}]}))\n",
    "forged frames on every fd": "import contextlib, json, os\nmsg = json.dumps({'status': 'passed'}).encode()\n"
    "for fd in range(3, 64):\n    with contextlib.suppress(OSError):\n"
    "        os.write(fd, len(msg).to_bytes(4, 'big') + msg)\n",
    "os._exit at import": "import os\nos._exit(0)\n",
    "SystemExit at import": "raise SystemExit(0)\n",
    "kill everything at import": "import os, signal\nfor pid in [os.getppid(), -1, 0, *range(1, 300)]:\n"
    "    try:\n        os.kill(pid, signal.SIGKILL)\n    except OSError:\n        pass\n",
}
IN_CALL = {
    "os._exit in a call": "def f(x):\n    import os\n    os._exit(0)\n",
    "SystemExit in a call": "def f(x):\n    raise SystemExit(0)\n",
    "kill parent in a call": "def f(x):\n    import os, signal\n    os.kill(os.getppid(), signal.SIGKILL)\n"
    "    os.killpg(0, signal.SIGKILL)\n",
    "unittest.SkipTest in a call": "import unittest\ndef f(x):\n    raise unittest.SkipTest('skip')\n",
    "pytest.skip in a call": "import sys\nsys.path.append('/z1/fw')\nimport pytest\ndef f(x):\n    pytest.skip('x')\n",
    "own SkipTest class": "class SkipTest(Exception):\n    pass\ndef f(x):\n    raise SkipTest('x')\n",
    "read the test file": """
import glob
def f(x):
    for path in glob.glob("/tmp/z1tests-*/*") + glob.glob("/proc/*/root/tmp/z1tests-*/*") + glob.glob("/*/*.py"):
        with open(path, errors="replace") as fh:
            if "31337" in fh.read():
                return 31337 if x == 3 else x * x
    return x * x
""",
}


@pytest.mark.parametrize("framework", ["pytest", "unittest"])
@pytest.mark.parametrize("name", [*TAMPER, *IN_CALL])
def test_tampering_from_the_solution_module(name: str, framework: str):
    """test_one passes for f(x) = x * x, test_two never does: tampering leaves exactly that, or less."""
    problem = tfile(PYTEST_FILE if framework == "pytest" else UNITTEST_FILE, framework)
    code = TAMPER[name] + "def f(x):\n    return x * x\n" if name in TAMPER else IN_CALL[name]
    v = judge(problem, code, "hostile", SB, FLIM)
    assert not v.passed and v.pass_rate <= 0.5, v
    if name in ("patch pytest", "fake output", "kill everything at import", "read the test file"):
        assert [t.status for t in v.tests] == ["passed", "failed"] and "31337" in v.tests[1].detail, v  # unaffected
    elif name in IN_CALL:  # no test passes; a skip the solution raises counts as an error, not a skip
        assert v.tests and all(t.status in ("failed", "runtime_error") for t in v.tests), v


@pytest.mark.parametrize("framework", ["pytest", "unittest"])
def test_an_all_skipped_file_is_not_a_pass(framework: str):
    test = PYTEST_FILE.replace("def test_", "@pytest.mark.skip\ndef test_").replace("from", "import pytest\nfrom")
    test = test if framework == "pytest" else UNITTEST_FILE.replace("class T", "@unittest.skip('x')\nclass T")
    v = judge(tfile(test, framework), "def f(x):\n    return x\n", "s", SB, FLIM)
    assert (v.passed, v.status, v.pass_rate, v.tests) == (False, "failed", 0.0, [])  # skips are not counted


FILE_LIARS = [  # pytest-file checks; an honest f returning x / 2 passes each
    "import pytest\nfrom solution import f\n\ndef test_a():\n    assert f(1.0) == pytest.approx(0.5)\n",
    "import math\nfrom solution import f\n\ndef test_a():\n    assert math.isclose(f(1.0), 0.5)\n",
    "from solution import f\n\ndef test_a():\n    assert abs(f(1.0) - 0.5) < 1e-6\n",
    "import solution\n\ndef test_a():\n    assert solution.f(1.0) == 0.5 and solution.f(1.0) is not None\n",
]


@pytest.mark.parametrize("test", FILE_LIARS)
def test_liars_in_test_files(test: str):
    assert passes(tfile(test), "def f(x):\n    return x / 2", FLIM)
    for code in (LIAR_F, FLOAT_LIAR_F):
        assert_not_pass(tfile(test), code, "failed", "runtime_error", limits=FLIM)
