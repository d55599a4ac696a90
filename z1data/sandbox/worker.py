"""The warm worker: started once inside bubblewrap, it forks one isolated child per execution.

Run as ``python -I -S worker.py bwrap|none[@FRAMEWORK] [SITE] FD``, its socket to the host on fd FD
(stdlib only: the venv is not inside the sandbox; ``main`` says what the optional arguments are).
Per request it clones the solution's process into fresh user, PID, mount and IPC namespaces
(``jail.py``): there the solution is PID 1, sees no other process (so it cannot signal the worker or the
check driver), gets fresh size-capped tmpfs on ``/tmp`` and ``/dev/shm``, no capabilities and its rlimits.
When it exits or is killed, the kernel kills everything it started (fork bombs, daemons). Check mode
also forks the driver, which alone reads the test code.

The worker never reads what goes in or comes out: code, stdin, test code, stdout, stderr and results
travel in memfds between the host and the execution (outputs are size-capped by seals). So nothing of
one execution is in the memory that the next is forked from: no solution can dig an earlier correct
solution's code or output, or a test, out of its own address space. The worker owns the deadline,
watches the execution's total memory, and reports the exit status and CPU time. Judging is outside.
"""

from __future__ import annotations

import _sitebuiltins  # noqa: F401 -- imported once here rather than in every child
import atexit  # noqa: F401
import contextlib
import gc
import json
import os
import select
import signal
import socket
import struct
import sys
import time
import traceback  # noqa: F401 -- error reports must not need a free fd (fd exhaustion) or a fresh import
import typing  # noqa: F401 -- call-style solutions see its names (LeetCode's `List`...): import it once
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import filetests
import harness
import jail

sys.path.pop(0)  # /z1 holds only our files, but keep the solution's import path exactly the stdlib's

RSS_EVERY_S = 0.05  # how often the execution's total memory is checked
PAGE = os.sysconf("SC_PAGE_SIZE")


def _solution(isolated: bool, req: dict[str, Any], fds: dict[int, int], workdir: str) -> None:
    """The solution's process (never returns). Its job (code, call) arrives on fd 3, read only here."""
    status = 70
    try:
        os.setsid()  # process groups span PID namespaces: kill(0, ...) must not reach the worker
        jail.place_fds(fds)  # first, so that a failure below is reported on the execution's stderr
        if isolated:
            jail.isolate(req["limits"]["tmp_mb"])
        else:
            os.chdir(workdir)
        jail.set_limits(req["limits"], nproc=isolated)
        filetests.forget()
        with os.fdopen(3, "rb") as f:
            job = json.loads(f.read())
        if req["mode"] == "program":
            status = harness.run_program(job["code"])
        elif req["mode"] == "call":
            status = harness.run_call(job["code"], job["fn_name"], job["args_json"], 4)
        elif req["mode"] == "inline":
            status = harness.run_inline(job["code"], job["tests"], job["framework"], job["module"], 4)
        else:
            status = harness.serve(job["code"], job.get("prelude"), job.get("setup"), 4, 5)
    except BaseException as e:
        os.write(2, f"\nsandbox: {type(e).__name__}: {e}\n".encode(errors="replace"))
    finally:
        os._exit(status)


def _driver(req: dict[str, Any], fds: dict[int, int]) -> None:
    """The check driver (never returns): trusted test code, talking to the solution over two pipes."""
    try:
        jail.place_fds(fds)
        jail.set_limits(req["limits"], nproc=False)
        harness.drive_check(3, 4, 5, 6)
    finally:
        os._exit(0)


def _kill(pid: int, isolated: bool) -> None:
    for fn in (os.kill,) if isolated else (os.kill, os.killpg):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            fn(pid, signal.SIGKILL)


def execute(req: dict[str, Any], fds: dict[str, int], isolated: bool) -> dict[str, Any]:
    """Run one job. ``fds`` are the host's memfds: payload, stdin, secret (inputs), stdout, stderr, result."""
    lim = req["limits"]
    null = os.open(os.devnull, os.O_RDWR)
    s_fds = {0: fds.get("stdin", null), 1: fds.get("stdout", null), 2: fds["stderr"], 3: fds["payload"]}
    c_fds: dict[int, int] = {}
    pipes: list[int] = []
    if req["mode"] in ("call", "inline"):
        s_fds[4] = fds["result"]
    elif req["mode"] == "check":
        c2s_r, c2s_w = os.pipe()
        s2c_r, s2c_w = os.pipe()
        pipes = [c2s_r, c2s_w, s2c_r, s2c_w]
        s_fds.update({4: c2s_r, 5: s2c_w})
        c_fds = {0: null, 1: null, 2: null, 3: fds["secret"], 4: s2c_r, 5: c2s_w, 6: fds["result"]}
    workdir = "" if isolated else _workdir()
    start = time.monotonic()
    pid = jail.clone_isolated() if isolated else os.fork()
    if pid == 0:
        _solution(isolated, req, s_fds, workdir)
    cpid = os.fork() if c_fds else 0
    if c_fds and cpid == 0:
        _driver(req, c_fds)
    for fd in [null, *pipes]:
        os.close(fd)
    rss_cap = lim["memory_mb"] << 20 if isolated else 0  # the namespace holds this execution only
    outcome = _wait(cpid or pid, start + lim["wall_s"], rss_cap, frozenset({1, os.getpid(), cpid}))
    killed = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    _kill(pid, isolated)  # in its PID namespace, the first process takes all the others with it
    _, status, usage = os.wait4(pid, 0)
    if cpid:
        _kill(cpid, True)
        os.waitpid(cpid, 0)
    if workdir:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "rc": os.waitstatus_to_exitcode(status),
        "wall": outcome == "wall",
        "memory": outcome == "memory",
        "killed": killed,
        "duration": time.monotonic() - start,
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def _wait(pid: int, deadline: float, rss_cap: int, skip: frozenset[int]) -> str:
    """Wait for ``pid`` to exit: "done", or why not: "wall" (deadline) or "memory" (the execution's
    processes, all but ``skip``, hold more than ``rss_cap`` bytes; checked every RSS_EVERY_S)."""
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            now = time.monotonic()
            if now >= deadline:
                return "wall"
            wake = min(deadline, now + RSS_EVERY_S) if rss_cap else deadline
            if select.select([pidfd], [], [], wake - now)[0]:
                return "done"
            if rss_cap and _rss(skip) > rss_cap:
                return "memory"
    finally:
        os.close(pidfd)


def _rss(skip: frozenset[int]) -> int:
    """Resident bytes of every process in this sandbox's PID namespace but ``skip``: one execution's."""
    total = 0
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in skip:
            try:
                with open(f"/proc/{name}/statm", "rb") as f:
                    total += int(f.read().split()[1]) * PAGE
            except (OSError, IndexError, ValueError):
                pass  # gone meanwhile
    return total


_seq = 0


def _workdir() -> str:
    """Unisolated mode only: a private directory per execution (isolated runs get a fresh tmpfs)."""
    global _seq
    _seq += 1
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"z1sbx-{os.getpid()}-{_seq}")
    os.mkdir(path, 0o700)
    return path


def _self_test(isolated: bool) -> dict[str, Any]:
    """What the host checks before trusting this worker: the namespaces work, no network, no privilege."""
    info: dict[str, Any] = {"uid": os.getuid(), "python": sys.version.split()[0], "pid": os.getpid()}
    info["interfaces"] = [name for _, name in socket.if_nameindex()]
    limits = {"cpu_s": 2, "wall_s": 10, "memory_mb": 512, "file_mb": 1, "files": 64, "processes": 16, "tmp_mb": 1}
    probe = "import os; print(os.getpid(), len([p for p in os.listdir('/proc') if p.isdigit()]))"
    fds = {"payload": jail.memfd_in(json.dumps({"code": probe}).encode())}
    fds.update(stdout=jail.memfd_out(1000), stderr=jail.memfd_out(1000))
    res = execute({"mode": "program", "limits": limits}, fds, isolated)
    out, err = (jail.read_out(fds[k], 1000)[0].decode(errors="replace") for k in ("stdout", "stderr"))
    for fd in fds.values():
        os.close(fd)
    info["probe"] = {"rc": res["rc"], "stdout": out.strip(), "stderr": err[-500:]}
    return info


def main() -> None:
    """argv: ``MODE[@FRAMEWORK_PATHS] [SITE_DIR] FD`` (``bwrap.worker_command``; the host appends FD)."""
    mode, _, framework = sys.argv[1].partition("@")
    isolated = mode == "bwrap"
    if framework:  # unisolated: where this environment keeps pytest (isolated: mounted at /z1/fw)
        filetests.FRAMEWORK_PATH[:] = framework.split(os.pathsep)
    for site_dir in sys.argv[2:-1]:  # a third-party environment's site-packages: solution and driver import from it
        if not os.path.isdir(site_dir):
            raise SystemExit(f"sandbox env site-packages {site_dir} is not visible to the worker")
        import site  # under -S importing it runs nothing; addsitedir also processes the env's .pth files

        site.addsitedir(site_dir)
    filetests.preload()
    sock = socket.socket(fileno=int(sys.argv[-1]))
    jail.check(jail.libc.prctl(jail.PR_SET_DUMPABLE, 0, 0, 0, 0), "dumpable")  # unreadable via /proc
    _reply(sock, {"ready": _self_test(isolated)})
    gc.freeze()  # children then never touch (copy) the worker's objects when they collect garbage
    while True:
        head, fds = _recv_exact(sock, 4, with_fds=True)
        if len(head) < 4:
            return  # the host went away
        req = json.loads(_recv_exact(sock, struct.unpack(">I", head)[0])[0])
        try:
            reply = execute(req, dict(zip(req.pop("fds"), fds, strict=True)), isolated)
        except Exception as e:  # the worker's own failure: the host replaces it
            reply = {"error": f"{type(e).__name__}: {e}"}
        for fd in fds:
            os.close(fd)
        _reply(sock, reply)
        if "error" in reply:
            return


def _recv_exact(sock: socket.socket, n: int, with_fds: bool = False) -> tuple[bytes, list[int]]:
    buf, fds = bytearray(), []
    while len(buf) < n:
        if with_fds:
            data, got, _, _ = socket.recv_fds(sock, n - len(buf), 8)
            fds += got
        else:
            data = sock.recv(n - len(buf))
        if not data:
            break
        buf += data
    return bytes(buf), fds


def _reply(sock: socket.socket, msg: dict[str, Any]) -> None:
    body = json.dumps(msg).encode()
    sock.sendall(struct.pack(">I", len(body)) + body)


if __name__ == "__main__":
    main()
