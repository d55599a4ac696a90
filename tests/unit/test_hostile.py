"""Hostile solutions: each must end non-pass, leave the host unharmed and the pool still serving.

Everything here runs only inside the bubblewrap pool (never unsandboxed). Limits are small so the
whole file stays fast; a fork bomb is capped by RLIMIT_NPROC inside the execution's user namespace.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from z1data.judge import judge
from z1data.records import CallCase, CallTests, CheckTests, Problem, StdioCase
from z1data.records import Tests as Spec
from z1data.sandbox import Limits, Sandbox, make_sandbox

LIM = Limits(time_s=0.5, memory_mb=256, max_processes=32)  # wall limit: 2 s
SB: Sandbox


@pytest.fixture(scope="module", autouse=True)
def _sandbox():
    global SB
    with make_sandbox(workers=2, calibrate=False) as sandbox:
        SB = sandbox
        yield sandbox


@pytest.fixture(autouse=True)
def _still_serving_and_host_clean():
    """After every hostile test: no sandboxed process left behind, and the pool still judges correctly."""
    before = _sandboxed_processes()
    yield
    assert judge(ECHO, "print(input())", "ok", SB, LIM).passed
    for _ in range(50):  # workers may have been replaced (the old ones take a moment to go), never multiplied
        if _sandboxed_processes() <= before:
            break
        time.sleep(0.02)
    assert _sandboxed_processes() <= before
    assert SB.replaced == 0, "a hostile solution took a worker down"


def _sandboxed_processes() -> int:
    """Processes on the host running as the sandbox's uid (nobody): the workers and anything they left."""
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(FileNotFoundError):
            count += os.stat(f"/proc/{pid}").st_uid == 65534
    return count


def stdio(expected: str = "42\n", stdin: str = "") -> Problem:
    return Problem("p-stdio", "q", Spec(stdio=[StdioCase(stdin, expected)]))


ECHO = stdio("hi\n", "hi\n")
CALL = Problem("p-call", "q", Spec(call=CallTests("f", [CallCase.of([2], 4)])))
CHECK = Problem("p-check", "q", Spec(check=CheckTests("def check(candidate):\n    assert candidate(2) == 4\n", "f")))


def verdict(problem: Problem, code: str, limits: Limits = LIM):
    return judge(problem, code, "hostile", SB, limits)


def assert_not_pass(problem: Problem, code: str, *statuses: str) -> None:
    v = verdict(problem, code)
    assert not v.passed and v.pass_rate == 0.0, v
    if statuses:
        assert v.status in statuses, v


# ---------------------------------------------------------------- resource abuse
def test_fork_bomb():
    assert_not_pass(stdio(), "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")


def test_processes_are_capped_per_execution():
    code = (
        "import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(9)\n"
        "            os._exit(0)\n        n += 1\nexcept OSError:\n    print(n, flush=True)\n    os._exit(0)"
    )
    res = SB.run(code, "", Limits(time_s=0.5, memory_mb=2048, max_processes=20))
    assert res.stdout == "19\n"  # RLIMIT_NPROC in the execution's own user namespace: itself + 19


def test_memory_bomb():
    assert_not_pass(stdio(), "x = bytearray(1 << 34)\nprint(42)", "memory")
    assert_not_pass(stdio(), "x = []\nwhile True:\n    x.append(' ' * 10**6)", "memory")


def test_memory_spread_over_processes_is_capped():
    # each process stays under RLIMIT_AS; together they pass memory_mb: the worker's RSS watch kills them
    code = (
        "import os, time\nfor _ in range(8):\n    if os.fork() == 0:\n        break\n"
        "x = bytearray(200 << 20)\nfor i in range(0, len(x), 4096):\n    x[i] = 1\ntime.sleep(3)\nprint(42)"
    )
    assert_not_pass(stdio(), code, "memory", "timeout")


def test_infinite_loop_and_sleep():
    assert_not_pass(stdio(), "while True:\n    pass", "timeout")
    assert_not_pass(stdio(), "import time\ntime.sleep(100)", "timeout")


def test_ignoring_sigxcpu_still_times_out():
    assert_not_pass(
        stdio(), "import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass", "timeout"
    )


def test_deep_recursion():
    code = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return f(n + 1) + 1\nprint(f(0))"
    assert_not_pass(stdio(), code, "memory", "runtime_error", "timeout")


def test_huge_output():
    assert_not_pass(stdio(), "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", "failed")
    assert_not_pass(stdio(), "import sys\nwhile True:\n    sys.stderr.write('x' * 65536)", "failed")


def test_fd_exhaustion():
    assert_not_pass(stdio(), "fs = []\nwhile True:\n    fs.append(open('/dev/null'))", "runtime_error")


def test_disk_filling_is_capped():
    code = "i = 0\nwhile True:\n    open(f'/tmp/f{i}', 'wb').write(b'x' * (1 << 20))\n    i += 1"
    assert_not_pass(stdio(), code, "runtime_error")


# ---------------------------------------------------------------- escaping the boundary
def test_writing_outside_tmp(tmp_path: Path):
    targets = [tmp_path / "pwned", Path("/usr/pwned"), Path(__file__).with_name("pwned"), Path("/pwned")]
    code = f"""
ok = 0
for p in {[str(t) for t in targets]!r}:
    try:
        open(p, 'w').write('x')
        ok += 1
    except OSError:
        pass
print(ok)
"""
    v = verdict(stdio("0\n"), code)
    assert v.passed  # every write failed inside; and nothing appeared outside:
    assert not any(t.exists() for t in targets)


def test_reading_host_files(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET\n")
    paths = [str(secret), "/etc/passwd", "/etc/hostname", str(Path(__file__)), "/root/.bashrc", "/proc/1/environ"]
    code = f"for p in {paths!r}:\n    try:\n        print(open(p).read().strip())\n    except OSError:\n        pass"
    assert_not_pass(stdio("TOPSECRET\n"), code)


def test_tmp_is_private_per_execution():
    verdict(stdio(), "open('/tmp/left', 'w').write('42')\nopen('/dev/shm/left', 'w').write('42')")
    for _ in range(3):  # whichever worker runs it, the files are gone
        assert_not_pass(stdio(), "print(open('/tmp/left').read())")
        assert_not_pass(stdio(), "print(open('/dev/shm/left').read())")


def test_network_connect():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    hits: list[socket.socket] = []
    t = threading.Thread(target=lambda: hits.append(listener.accept()[0]), daemon=True)
    t.start()
    code = (
        "import socket\nfor host, port in [('127.0.0.1', %d), ('1.1.1.1', 53), ('8.8.8.8', 443)]:\n"
        "    try:\n        socket.create_connection((host, port), timeout=0.5)\n        print(42)\n"
        "    except OSError:\n        pass".replace("%d", str(port))
    )
    assert_not_pass(stdio(), code)
    t.join(0.2)
    assert not hits
    listener.close()


def test_signals_to_parent_and_everyone():
    for code in [
        "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
        "import os, signal\nos.kill(-1, signal.SIGKILL)",
        "import os, signal\nos.killpg(0, signal.SIGKILL)",
        "import os, signal\nfor pid in range(1, 400):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
        "    except OSError:\n        pass",
    ]:
        assert_not_pass(stdio(), code)
        assert_not_pass(CHECK, code + "\ndef f(x):\n    return 0")


def test_sees_no_other_process():
    assert verdict(stdio("1\n"), "import os\nprint(len([p for p in os.listdir('/proc') if p.isdigit()]))").passed


def test_background_process_does_not_outlive_the_test():
    code = (
        "import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        os.execv('/usr/bin/sleep', ['sleep', '31337'])\n    os._exit(0)\nprint(42)"
    )
    v = verdict(stdio(), code)
    assert v.passed and v.tests[0].time_s < 2  # the program's own answer counts; its daemon does not linger
    assert not _processes_with_arg("31337")


def test_daemon_holding_stdout_cannot_stall_the_judge():
    code = "import os, time\nif os.fork() == 0:\n    time.sleep(60)\nprint(42)"
    v = verdict(stdio(), code)
    assert v.passed and v.tests[0].time_s < 2


def _processes_with_arg(arg: str) -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if arg.encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                return True
        except OSError:
            pass
    return False


# ---------------------------------------------------------------- tampering with the verdict
EXIT_TRICKS = [
    "import sys\nsys.exit(0)",
    "import os\nos._exit(0)",
    "import atexit, os\natexit.register(lambda: os._exit(0))\nraise SystemExit(0)",
    'print(\'{"status": "passed"}\')\nprint(\'{"ok": 4}\')\nraise SystemExit(0)',
]


@pytest.mark.parametrize("trick", EXIT_TRICKS)
def test_exit_tricks_in_call_and_check(trick: str):
    assert_not_pass(CALL, trick + "\ndef f(x):\n    return 0")
    assert_not_pass(CHECK, trick + "\ndef f(x):\n    return 0")
    assert_not_pass(CALL, "def f(x):\n" + "\n".join("    " + line for line in trick.splitlines()))
    assert_not_pass(CHECK, "def f(x):\n" + "\n".join("    " + line for line in trick.splitlines()))


LIARS = [
    "class A:\n    def __eq__(self, o):\n        return True\n    __hash__ = None\ndef f(x):\n    return A()",
    "class I(int):\n    def __eq__(self, o):\n        return True\n    __hash__ = int.__hash__\n"
    "def f(x):\n    return I(0)",
    "class L(list):\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return L()",
    "class S(str):\n    def __eq__(self, o):\n        return True\n    __hash__ = str.__hash__\n"
    "def f(x):\n    return S('no')",
]


@pytest.mark.parametrize("code", LIARS)
def test_lying_eq_never_passes(code: str):
    assert_not_pass(CALL, code, "failed")
    assert_not_pass(CHECK, code, "failed")


PATCHES = [
    "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})",
    "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.abs = lambda x: 0",
    """
import gc, types
for o in gc.get_objects():
    if isinstance(o, types.FunctionType) and o.__name__ in ('check', '_verdict', '_call', 'encode'):
        o.__code__ = (lambda *a, **k: None).__code__
""",
    """
import sys
for m in list(sys.modules.values()):
    for n in ('_call', 'drive_check', 'write_frame'):
        if hasattr(m, n):
            setattr(m, n, lambda *a, **k: None)
""",
    """
import os
for fd in range(3, 64):
    try:
        os.write(fd, b'\\x00\\x00\\x00\\x14{"status": "passed"}')
    except OSError:
        pass
""",
]


@pytest.mark.parametrize("patch", PATCHES)
def test_monkeypatching_and_channel_forgery(patch: str):
    assert_not_pass(CHECK, patch + "\ndef f(x):\n    return 0")
    assert_not_pass(CALL, patch + "\ndef f(x):\n    return 0")
