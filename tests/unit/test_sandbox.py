"""The sandbox itself: isolation facts, program semantics, the plain-data boundary, the pool's upkeep."""

from __future__ import annotations

import json
import math

import pytest

from z1data.judge import judge
from z1data.records import CheckTests, Problem, StdioCase
from z1data.records import Tests as Spec
from z1data.sandbox import (
    Job,
    Limits,
    SandboxUnavailable,
    WorkerPool,
    calibration_factor,
    describe,
    make_sandbox,
    plain,
)

LIM = Limits(time_s=1.0, memory_mb=512)


@pytest.fixture(scope="module")
def sb():
    with make_sandbox(workers=2, calibrate=False) as pool:
        yield pool


def out(sb, code: str, stdin: str = "", limits: Limits = LIM) -> str:
    res = sb.run(code, stdin, limits)
    assert res.returncode == 0, res.stderr
    return res.stdout


# ---------------------------------------------------------------- what the inside looks like
FACTS = r"""
import json, os, socket, ctypes
status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
try:
    open("/usr/x", "w")
    ro = False
except OSError:
    ro = True
open("/tmp/x", "w").write("ok")
print(json.dumps({
    "uid": os.getuid(), "pid": os.getpid(), "cwd": os.getcwd(), "env": sorted(os.environ),
    "ifaces": [n for _, n in socket.if_nameindex()], "top": sorted(os.listdir("/")),
    "procs": [p for p in os.listdir("/proc") if p.isdigit()], "caps": status["CapEff"].strip(),
    "nnp": status["NoNewPrivs"].strip(), "usr_ro": ro, "tmp": os.listdir("/tmp"),
    "userns": ctypes.CDLL(None, use_errno=True).unshare(0x10000000), "home": os.path.exists("/root/.bashrc"),
}))
"""


def test_isolation_facts(sb):
    facts = json.loads(out(sb, FACTS))
    assert facts["uid"] == 65534 and facts["pid"] == 1 and facts["procs"] == ["1"]
    assert facts["ifaces"] == ["lo"]  # no network
    assert facts["caps"] == "0000000000000000" and facts["nnp"] == "1"
    assert facts["userns"] == -1  # cannot make a user namespace (and so no capabilities anywhere)
    assert facts["usr_ro"] and facts["tmp"] == ["x"] and facts["cwd"] == "/tmp"
    assert not {"work", "etc", "home", "var"} & set(facts["top"]) and not facts["home"]
    assert set(facts["env"]) <= {"LANG", "PATH", "PWD"}


def test_describe_and_calibration(sb):
    d = describe(sb)
    assert d["isolation"] == "bwrap" and d["workers"] == 2 and "bubblewrap" in d["bwrap"]["version"]
    assert d["uid_inside"] == 65534 and d["defaults"]["time_s"] == Limits().time_s
    assert 1.0 <= calibration_factor(sb, rounds=1) <= 10.0


def test_time_factor_scales_limits(sb):
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4:\n    pass\nprint(1)"
    tight = Limits(time_s=0.2)
    assert sb.run(burn, "", tight).timed_out
    sb.time_factor = 4.0
    try:
        assert not sb.run(burn, "", tight).timed_out
    finally:
        sb.time_factor = 1.0


# ---------------------------------------------------------------- a program runs as `python main.py` would
def test_program_semantics(sb):
    assert out(sb, "print(__name__)") == "__main__\n"
    assert out(sb, "import sys\nprint(sys.stdin.read().upper(), end='')", "ab\ncd\n") == "AB\nCD\n"
    assert out(sb, "print(open(0).read().count('\\n'))", "a\nb\n") == "2\n"
    assert out(sb, "import atexit\natexit.register(lambda: print('bye'))\nprint('hi')") == "hi\nbye\n"
    assert out(sb, "import threading\nthreading.Thread(target=lambda: print('late')).start()") == "late\n"
    assert out(sb, "print('é€😀')") == "é€😀\n"
    assert out(sb, "print('x')\nexit()") == "x\n"  # exit()/quit() exist, as in a normal interpreter
    assert sb.run("import sys\nsys.exit(3)", "", LIM).returncode == 3
    res = sb.run("raise ValueError('boom')", "", LIM)
    assert res.returncode == 1 and res.stderr.rstrip().endswith("ValueError: boom")


def test_fresh_state_per_execution(sb):
    code = "import random, sys\nprint(random.random(), sorted(m for m in sys.modules if m in ('numpy', 'z1data')))"
    first, second = out(sb, code), out(sb, code)
    assert first != second and first.endswith("[]\n")  # fresh random seed; only the standard library


def test_large_stdin_and_output_cap(sb):
    big = "x" * (5 << 20) + "\n"
    assert out(sb, "import sys\nprint(len(sys.stdin.read()))", big, Limits(time_s=2.0)) == f"{len(big)}\n"
    cap = Limits(max_output_bytes=1000)
    assert not sb.run("print('a' * 999)", "", cap).output_truncated  # 1000 bytes with the newline
    assert sb.run("print('a' * 1000)", "", cap).output_truncated


# ---------------------------------------------------------------- plain data across the boundary
VALUES = "None, True, 0, -(10**400), 2.5, float('inf'), 's', b'\\x00b', 1 + 2j, (1, [2, {'k': (3,)}]), {1: 'a'}, {1, 2}"


def test_plain_round_trip_through_the_sandbox(sb):
    res = sb.execute(Job(f"def f():\n    return [{VALUES}]", "call", fn_name="f"), LIM)
    assert plain.decode(json.loads(res.result)["ok"]) == eval(f"[{VALUES}]")
    nan = sb.execute(Job("def f():\n    return float('nan')", "call", fn_name="f"), LIM)
    assert math.isnan(plain.decode(json.loads(nan.result)["ok"]))


def test_plain_decode_is_strict():
    for bad in ['{"t": "tuple", "v": 3}', '{"t": "evil", "v": []}', '{"x": 1}', '{"t": "set", "v": [[1]]}', "[" * 5000]:
        with pytest.raises(ValueError):
            plain.loads(bad)
    assert type(plain.decode(plain.encode(type("I", (int,), {})(5)))) is int  # subclasses become builtins
    with pytest.raises(plain.NotPlain):
        plain.encode(object())


def test_trusted_helpers_replace_the_solutions_copies(sb):
    """HumanEval/32-style: check() calls a helper from the prompt; a solution's own copy must not count."""
    check = "def check(candidate):\n    assert poly([1, 2], candidate([1, 2])) == 0\n"
    helper = "def poly(xs, x):\n    return sum(c * x**i for i, c in enumerate(xs))\n"
    cheat = "def poly(xs, x):\n    return 0\ndef find_zero(xs):\n    return 12345\n"
    honest = helper + "def find_zero(xs):\n    return -xs[0] / xs[1]\n"
    with_helpers = Problem("p", "q", Spec(check=CheckTests(check, "find_zero")), starter_code=helper)
    assert judge(with_helpers, honest, "s", sb, LIM).passed
    assert judge(with_helpers, cheat, "s", sb, LIM).status == "failed"
    without = Problem("p", "q", Spec(check=CheckTests(check, "find_zero")))
    assert judge(without, cheat, "s", sb, LIM).passed  # the documented gap: no trusted helpers given


# ---------------------------------------------------------------- the pool's upkeep
def test_dead_worker_is_replaced_and_its_execution_fails():
    with WorkerPool("bwrap", workers=1) as pool:
        (worker,) = pool._live
        worker.proc.kill()
        worker.proc.wait()
        res = pool.run("print(1)", "", LIM)
        assert res.returncode != 0 and "worker failed" in res.stderr
        assert pool.replaced == 1 and out(pool, "print(2)") == "2\n"


def test_unavailable_isolation_fails_at_start_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("Z1DATA_BWRAP", "/nonexistent/bwrap")
    with pytest.raises(SandboxUnavailable, match="not an executable"):
        WorkerPool("bwrap", workers=1)
    monkeypatch.setenv("Z1DATA_BWRAP", "/bin/false")  # a bwrap that cannot build a sandbox here
    with pytest.raises(SandboxUnavailable, match="did not start"):
        WorkerPool("bwrap", workers=1)
    with pytest.raises(ValueError, match="isolation"):
        WorkerPool("chroot", workers=1)  # type: ignore[arg-type]


def test_unisolated_opt_out_says_so_loudly():
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(messages.append, level="WARNING")
    try:
        with make_sandbox("none", workers=1, calibrate=False) as pool:
            assert out(pool, "print(6 * 7)") == "42\n"
            assert "ISOLATION IS OFF" in describe(pool)["warning"]
    finally:
        logger.remove(sink)
    assert any("ISOLATION IS OFF" in m for m in messages)


# ---------------------------------------------------------------- nothing leaks between executions
SECRET_CHECK = Problem(
    "p-secret",
    "q",
    Spec(check=CheckTests("def check(candidate):\n    assert candidate() == 'zq' + 'SECRET-XYZ'\n", "f")),
)
# Searches everything a solution can reach for the test's secret: its own objects and memory (which is
# a fork of the warm worker), every fd it holds, and whatever /proc shows. Its pattern cannot match itself.
HUNT = r"""
import gc, os, re
PAT = re.compile(rb"SECRET-([A-Z]{3})\b")
def search(data):
    m = PAT.search(data)
    return m and m.group(1).decode()
def hunt():
    for o in gc.get_objects():
        for s in (o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple)) else [o]):
            if isinstance(s, str) and (found := search(s.encode(errors="ignore"))):
                return found
    for fd in range(64):
        try:
            if found := search(os.pread(fd, 1 << 20, 0)):
                return found
        except OSError:
            pass
    for name in os.listdir("/proc"):
        for leaf in ("cmdline", "environ"):
            try:
                if found := search(open(f"/proc/{name}/{leaf}", "rb").read()):
                    return found
            except OSError:
                pass
    with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb") as mem:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            try:
                mem.seek(lo)
                if found := search(mem.read(min(hi - lo, 64 << 20))):
                    return found
            except (OSError, ValueError, OverflowError):
                pass
    return "none"
ANSWER = "SECRET-" + hunt()
"""


def test_cannot_find_the_check_code(sb):
    honest = "def f():\n    return 'zqSECRET-XYZ'"
    assert judge(SECRET_CHECK, honest, "s", sb, LIM).passed  # the test code has now been through the pool
    assert not judge(SECRET_CHECK, HUNT + "def f():\n    return 'zq' + ANSWER", "s", sb, LIM).passed


def test_cannot_find_expected_output_or_earlier_solutions(sb):
    # an earlier solution printed the expected output; a later one must not find it (or its code)
    problem = Problem("p", "q", Spec(stdio=[StdioCase("", "SECRET-XYZ\n")]))
    for _ in range(4):  # on every worker
        assert judge(problem, "print('SECRET-' + 'XYZ')", "s", sb, LIM).passed
    assert not judge(problem, HUNT + "print(ANSWER)", "s", sb, LIM).passed


def test_hunter_finds_what_is_really_there(sb):
    """The hunter works: a secret in its own stdin is found (so the two tests above prove absence)."""
    assert out(sb, HUNT + "print(ANSWER)", stdin="SECRET-XYZ\n") == "SECRET-XYZ\n"
