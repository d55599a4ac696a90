"""What runs inside one execution: the solution's process and the check driver. Stdlib only.

The worker forks these; see ``worker.py`` for the process layout. Three roles:

* ``run_program``: a stdin/stdout program, run as ``python main.py`` would run it (``__main__``,
  ``exit()``, threads joined, ``atexit`` hooks, streams flushed). Its stdout is judged outside.
* ``run_call``: exec the solution, call ``fn_name(*args)``, write the result as plain data to the
  result memfd. Whatever the process writes there is only ever "the answer": it is compared outside,
  with the expected value the sandbox never sees.
* ``serve`` + ``drive_check`` (assert-style tests): the solution's process only *serves calls*; the
  check code runs in another process (the driver) that holds the test code, calls the candidate
  through a proxy, and gets back plain data. The solution can neither see the asserts nor reach the
  driver's memory, and a lying ``__eq__`` never crosses the pipe.
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
    from . import plain
except ImportError:  # inside the sandbox this directory is on sys.path, not the z1data package
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
        exec(compile(code, "main.py", "exec"), main.__dict__)
        status = 0
    except SystemExit as e:
        status = _exit_status(e)
    except BaseException as e:
        _print_exc(e)
        status = 1
    return _finish(status)


def _load(code: str, typing_names: bool) -> dict[str, Any]:
    """Exec the solution as module ``__solution__`` (so ``if __name__ == "__main__":`` demo code is skipped)."""
    ns: dict[str, Any] = {"__name__": "__solution__", "__builtins__": builtins}
    if typing_names:  # LeetCode predefines typing names: `nums: List[int]` needs no import there
        exec("from typing import *", ns)
    exec(compile(code, "<solution>", "exec"), ns)
    return ns


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
        fn = _resolve(_load(code, typing_names=True), fn_name)
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


def serve(code: str, rx: int, tx: int) -> int:
    """Check mode, solution side: load the code, announce its callables, answer calls until EOF."""
    _std_streams()
    try:
        ns = _load(code, typing_names=False)
    except SystemExit as e:
        _send(tx, {"gone": f"exited while loading (status {e.code!r})"})
        return _exit_status(e)
    except BaseException as e:
        _print_exc(e)
        _send(tx, {"gone": f"{type(e).__name__}: {_text(e)}"})
        return 1
    _send(tx, {"ready": [k for k, v in ns.items() if callable(v) and not k.startswith("__")][:MAX_NAMES]})
    while (frame := read_frame(rx)) is not None:
        req = json.loads(frame)
        fn = ns.get(req["fn"])
        reply = _call(fn, plain.decode(req["args"]), plain.decode(req["kwargs"])) if callable(fn) else None
        _send(tx, reply or {"exc": ["NameError", f"name {req['fn']!r} is not defined"]})
        if reply and reply.get("exc", [""])[0] == "SystemExit":
            return 0
    return 0


# ---------------------------------------------------------------- the check driver (trusted side)
class _Ended(BaseException):
    """The solution's process stopped answering. BaseException: check code cannot catch it."""


class _NotPlain(BaseException):
    """The candidate returned something that is not plain data: a wrong answer."""


class _Rpc:
    def __init__(self, rx: int, tx: int) -> None:
        self.rx, self.tx = rx, tx

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            _send(self.tx, {"fn": name, "args": plain.encode(list(args)), "kwargs": plain.encode(kwargs)})
            frame = read_frame(self.rx)
        except (BrokenPipeError, ValueError) as e:
            raise _Ended(f"the solution's process ended or broke the channel ({e})") from None
        if frame is None:
            raise _Ended("the solution's process ended during a call")
        try:
            reply = json.loads(frame)
            if "ok" in reply:
                return plain.decode(reply["ok"])
        except (ValueError, TypeError, RecursionError):
            raise _Ended("unreadable reply from the solution's process") from None
        if "bad" in reply:
            raise _NotPlain(str(reply["bad"]))
        kind, text = [*list(reply.get("exc") or []), "Exception", ""][:2]
        if kind == "SystemExit":
            raise _Ended(str(text))
        exc = getattr(builtins, str(kind), None)
        if isinstance(exc, type) and issubclass(exc, Exception):
            raise exc(text)
        raise RuntimeError(f"{kind}: {text}")

    def proxy(self, name: str) -> Any:
        def candidate(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, args, kwargs)

        candidate.__name__ = candidate.__qualname__ = name
        return candidate


def _verdict(secret: dict[str, Any], rx: int, tx: int) -> dict[str, Any]:
    try:
        hello = json.loads(read_frame(rx) or b"{}")
    except ValueError:
        hello = {}
    if not isinstance(hello, dict) or not isinstance(hello.get("ready"), list):
        return {"status": "ended", "detail": str(hello.get("gone", "") if isinstance(hello, dict) else "")[:1000]}
    rpc = _Rpc(rx, tx)
    ns: dict[str, Any] = {"__name__": "__check__", "__builtins__": builtins}
    ns.update({n: rpc.proxy(n) for n in hello["ready"] if isinstance(n, str) and n.isidentifier()})
    try:
        if secret.get("helpers"):  # trusted helpers (the prompt) replace the solution's copies of them
            with contextlib.suppress(Exception):  # not valid code on its own: the solution's copies stay proxied
                exec(compile(secret["helpers"], "<helpers>", "exec"), ns)
        candidate = ns[secret["entry_point"]] = rpc.proxy(secret["entry_point"])  # not the prompt's stub
        exec(compile(secret["check"], "<check>", "exec"), ns)
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


def drive_check(secret_fd: int, rx: int, tx: int, out_fd: int) -> None:
    """Check mode, trusted side: read the test code from ``secret_fd``, run it, write the verdict."""
    with os.fdopen(secret_fd, "rb") as f:
        secret = json.loads(f.read())
    os.write(out_fd, json.dumps(_verdict(secret, rx, tx)).encode())
