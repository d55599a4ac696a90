"""The spine's sandbox: a fresh ``python -I -S`` subprocess per execution, under rlimits.

UNHARDENED. It bounds CPU, memory, output, file size and open files, and cleans up the process group,
but the program runs as the calling user with the network and the file system in reach. Use it for
trusted or already-filtered code and for tests; the hardened sandbox (bubblewrap namespaces, warm
forking workers) replaces it behind the same ``Sandbox.run``.

How limits map:

* CPU: ``RLIMIT_CPU`` = ceil(time_s) s soft (SIGXCPU), +1 s hard (SIGKILL). Whole seconds only (a kernel
  limit), so a 0.5 s limit allows up to 1 s of CPU. Wall clock: ``Limits.wall_s`` (2 * time_s + 1), then
  the whole process group gets SIGKILL. Both report ``timed_out``.
* Memory: ``RLIMIT_AS``. Reported as exceeded when stderr ends in ``MemoryError`` / "out of memory", or
  the program died of SIGKILL (OOM killer) or SIGSEGV (failed allocation in C code, stack overflow) that
  we did not send.
* Output: stdout and stderr are read incrementally and capped at ``max_output_bytes`` each; passing
  the cap kills the program (``output_truncated``), so a print loop costs neither memory nor time.
* ``RLIMIT_FSIZE``, ``RLIMIT_NOFILE``, no core files.
* ``RLIMIT_NPROC`` is NOT set: it counts every process and thread of the real uid (other judge
  workers, the user's own session), so it would fail innocent programs at random, and root ignores it
  anyway. ``max_processes`` is for sandboxes that run code under a uid of its own.

The program runs from a file in a private temporary directory that is its cwd and is removed
afterwards; the environment holds only PATH and LANG; ``-I -S`` ignores PYTHON* variables, the user
site and site-packages (so solutions get the standard library only). stdin goes through a pipe (not
a seekable file), so the program cannot re-read it. ``preexec_fn`` only calls ``setrlimit`` (no imports,
no locks), which keeps it safe although ``judge_many`` starts processes from several threads.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

from z1data.sandbox.base import ExecResult, Limits, Sandbox

_CHUNK = 1 << 16


class SubprocessSandbox(Sandbox):
    """``python -I -S program.py`` in a temp dir with rlimits; unhardened (see the module docstring)."""

    name = "subprocess"
    isolation = "rlimits + process group + private cwd; NO namespace, network or file-system isolation"

    def __init__(self, python: str = sys.executable) -> None:
        self.python = python

    def run(self, program: str, stdin: str, limits: Limits) -> ExecResult:
        workdir = tempfile.mkdtemp(prefix="z1sbx-")
        try:
            path = os.path.join(workdir, "main.py")
            with open(path, "w", encoding="utf-8") as f:
                f.write(program)
            return self._run(path, workdir, stdin.encode("utf-8", "surrogateescape"), limits)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _run(self, path: str, workdir: str, stdin: bytes, limits: Limits) -> ExecResult:
        start = time.monotonic()
        proc = subprocess.Popen(
            [self.python, "-I", "-S", path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=workdir,
            env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
            start_new_session=True,
            preexec_fn=_rlimits(limits),  # only setrlimit runs in the child: see the docstring
        )
        out, err, wall_hit, truncated = _communicate(proc, stdin, start + limits.wall_s, limits.max_output_bytes)
        if wall_hit or truncated:
            _kill_group(proc.pid)
        try:
            rc = proc.wait(timeout=max(0.0, start + limits.wall_s - time.monotonic()))
        except subprocess.TimeoutExpired:  # closed its pipes but kept running
            wall_hit = True
            _kill_group(proc.pid)
            rc = proc.wait()
        _kill_group(proc.pid)  # leftover children of a program that exited
        duration = time.monotonic() - start
        stderr = err.decode("utf-8", "replace")
        we_killed = wall_hit or truncated
        cpu_hit = rc == -signal.SIGXCPU or (rc == -signal.SIGKILL and not we_killed and duration >= _cpu(limits))
        tail = stderr.rstrip().rsplit("\n", 1)[-1]
        memory = rc != 0 and (
            tail.startswith("MemoryError")
            or "out of memory" in tail
            or (rc in (-signal.SIGKILL, -signal.SIGSEGV) and not we_killed and not cpu_hit)
        )
        return ExecResult(
            returncode=rc,
            stdout=out.decode("utf-8", "replace"),
            stderr=stderr,
            timed_out=wall_hit or cpu_hit,
            memory_exceeded=memory,
            output_truncated=truncated,
            duration_s=duration,
        )


def _cpu(limits: Limits) -> int:
    return max(1, math.ceil(limits.time_s))


def _rlimits(limits: Limits) -> Callable[[], None]:
    """A preexec_fn that only calls setrlimit with values computed here, in the parent."""
    cpu = _cpu(limits)
    mem = limits.memory_mb << 20
    fsize = limits.max_file_size_mb << 20
    _, nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    nofile = limits.max_open_files if nofile_hard == resource.RLIM_INFINITY else min(limits.max_open_files, nofile_hard)
    setrlimit = resource.setrlimit
    todo = [
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),
        (resource.RLIMIT_AS, (mem, mem)),
        (resource.RLIMIT_FSIZE, (fsize, fsize)),
        (resource.RLIMIT_NOFILE, (nofile, nofile)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]

    def apply() -> None:
        for which, value in todo:
            setrlimit(which, value)

    return apply


def _communicate(
    proc: subprocess.Popen[bytes], stdin: bytes, deadline: float, cap: int
) -> tuple[bytes, bytes, bool, bool]:
    """Feed stdin and read both streams until they close, the deadline passes, or a stream passes ``cap``."""
    assert proc.stdin and proc.stdout and proc.stderr
    out, err = bytearray(), bytearray()
    bufs = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    sel.register(proc.stderr, selectors.EVENT_READ)
    view, pos = memoryview(stdin), 0
    if view:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE)
    else:
        proc.stdin.close()
    timed_out = truncated = False
    try:
        while sel.get_map() and not truncated:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            for key, _ in sel.select(left):
                fd = key.fd
                if key.fileobj is proc.stdin:
                    try:
                        pos += os.write(fd, view[pos : pos + _CHUNK])
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the program stopped reading: fine
                        pos = len(view)
                    if pos >= len(view):
                        sel.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                chunk = os.read(fd, _CHUNK)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                buf = bufs[fd]
                room = cap - len(buf)
                truncated = truncated or len(chunk) > room
                buf += chunk[:room]
    finally:
        sel.close()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()
    return bytes(out), bytes(err), timed_out, truncated


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
