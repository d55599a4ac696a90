"""The warm worker: started once inside bubblewrap, it forks one isolated child per execution.

Run as ``python -I -S worker.py bwrap|none FD`` with its socket to the host on fd FD (stdlib only: the venv is not
inside the sandbox). Per request it clones the solution's process into fresh user, PID, mount and IPC
namespaces (a raw ``clone``, so there is one fork, not two): there it is PID 1 with its own ``/proc``
(it sees no other process, so it cannot signal the worker or the check driver), its own size-capped
tmpfs on ``/tmp`` and ``/dev/shm``, no capabilities, ``no_new_privs`` and rlimits; an unmapped uid, so
it cannot create user namespaces either. When it exits or is killed, the kernel kills everything it
started (fork bombs, background daemons). Check mode also forks the driver, which holds the test code
(received as a memfd this process never reads, so no solution forked from here can find it in memory).

The worker owns the deadlines: the wall clock, caps on captured output (passing one kills the
execution), and it reports the exit status and CPU time. Judging happens outside, on plain data.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import select
import signal
import socket
import struct
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x20000, 0x8000000, 0x10000000, 0x20000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 4, 38
SYS = {"x86_64": {"clone": 56, "capset": 126}, "aarch64": {"clone": 220, "capset": 91}}.get(platform.machine(), {})
_libc = ctypes.CDLL(None, use_errno=True)
_libc_gil = ctypes.PyDLL(None, use_errno=True)  # keeps the GIL across clone: the child resumes holding it
_libc_gil.syscall.restype = ctypes.c_long


def _check(ret: int, what: str) -> None:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _clone_isolated() -> int:
    """fork() into new user, PID, mount and IPC namespaces, with CPython's own fork bookkeeping."""
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | signal.SIGCHLD
    pid = _libc_gil.syscall(ctypes.c_long(SYS["clone"]), ctypes.c_ulong(flags), None, None, None, ctypes.c_ulong(0))
    if pid == 0:
        api.PyOS_AfterFork_Child()
    else:
        api.PyOS_AfterFork_Parent()
    _check(pid, "clone")
    return pid


def _mount(src: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = [None if s is None else s.encode() for s in (src, target, fstype, data)]
    _check(_libc.mount(enc[0], enc[1], enc[2], ctypes.c_ulong(flags), enc[3]), f"mount {target}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _isolate(tmp_mb: int) -> None:
    """In the fresh namespaces: private mounts, own /proc, fresh tmpfs; then give up every privilege."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    opts = f"size={tmp_mb}m,nr_inodes=4096,mode=1777"
    _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts)
    _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, opts)
    os.chdir("/tmp")
    _check(_libc.syscall(ctypes.c_long(SYS["capset"]), ctypes.byref(_CapHeader(0x20080522, 0)), (_CapData * 2)()), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _check(_libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0), "dumpable")  # only its own PID namespace can see it


def _place_fds(fds: dict[int, int]) -> None:
    """Make exactly ``fds`` (target -> source) open and close everything else."""
    import fcntl

    high = {target: fcntl.fcntl(src, fcntl.F_DUPFD, 64) for target, src in fds.items()}
    for target, src in high.items():
        os.dup2(src, target, inheritable=True)
    os.closerange(max(fds) + 1, 1 << 20)


def _limits(lim: dict[str, Any], nproc: bool) -> None:
    import resource as r

    cpu = max(1, int(-(-lim["cpu_s"] // 1)))
    pairs = [
        (r.RLIMIT_CPU, cpu, cpu + 1),
        (r.RLIMIT_AS, lim["memory_mb"] << 20, lim["memory_mb"] << 20),
        (r.RLIMIT_FSIZE, lim["file_mb"] << 20, lim["file_mb"] << 20),
        (r.RLIMIT_NOFILE, lim["files"], lim["files"]),
        (r.RLIMIT_CORE, 0, 0),
    ]
    if nproc:  # counted per user namespace, and the execution has one of its own: this is its process cap
        pairs.append((r.RLIMIT_NPROC, lim["processes"], lim["processes"]))
    for which, soft, hard in pairs:
        r.setrlimit(which, (soft, hard))


def _solution(isolated: bool, req: dict[str, Any], fds: dict[int, int], workdir: str) -> None:
    """The solution's process (never returns)."""
    status = 70
    try:
        if isolated:
            _isolate(req["limits"]["tmp_mb"])
        else:
            os.setsid()
            os.chdir(workdir)
        _place_fds(fds)
        _limits(req["limits"], nproc=isolated)
        if req["mode"] == "program":
            status = harness.run_program(req["code"])
        elif req["mode"] == "call":
            status = harness.run_call(req["code"], req["fn_name"], req["args_json"], 3)
        else:
            status = harness.serve(req["code"], 3, 4)
    except BaseException as e:
        os.write(2, f"\nsandbox: {type(e).__name__}: {e}\n".encode(errors="replace"))
    finally:
        os._exit(status)


def _driver(req: dict[str, Any], fds: dict[int, int]) -> None:
    """The check driver (never returns): trusted test code, talking to the solution over two pipes."""
    try:
        _place_fds(fds)
        _limits(req["limits"], nproc=False)
        harness.drive_check(3, 4, 5, 6)
    finally:
        os._exit(0)


def _kill(pid: int, isolated: bool) -> None:
    for target, fn in ((pid, os.kill), (pid, os.killpg)) if not isolated else ((pid, os.kill),):
        try:
            fn(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def execute(req: dict[str, Any], fds: dict[str, int], isolated: bool) -> dict[str, Any]:
    lim, mode = req["limits"], req["mode"]
    null = os.open(os.devnull, os.O_RDWR)
    err_r, err_w = os.pipe()
    out_r, out_w = os.pipe() if mode == "program" else (-1, null)
    res_r, res_w = os.pipe() if mode != "program" else (-1, -1)
    s_fds = {0: fds.get("stdin", null), 1: out_w, 2: err_w}
    c_fds: dict[int, int] = {}
    mine = [null, err_w, out_w, res_w, *fds.values()]
    if mode == "call":
        s_fds[3] = res_w
    elif mode == "check":
        c2s_r, c2s_w = os.pipe()
        s2c_r, s2c_w = os.pipe()
        s_fds.update({3: c2s_r, 4: s2c_w})
        c_fds = {0: null, 1: null, 2: null, 3: fds["secret"], 4: s2c_r, 5: c2s_w, 6: res_w}
        mine += [c2s_r, c2s_w, s2c_r, s2c_w]
    workdir = "" if isolated else _workdir()
    start = time.monotonic()
    pid = _clone_isolated() if isolated else os.fork()
    if pid == 0:
        _solution(isolated, req, s_fds, workdir)
    cpid = os.fork() if c_fds else 0
    if c_fds and cpid == 0:
        _driver(req, c_fds)
    for fd in set(mine) - {-1}:
        os.close(fd)
    streams = {fd: bytearray() for fd in (err_r, out_r, res_r) if fd >= 0}
    open_fds = set(streams)
    done_fd = os.pidfd_open(cpid if cpid else pid)
    deadline, cap = start + lim["wall_s"], lim["out_bytes"]
    wall, truncated = _pump(streams, open_fds, done_fd, res_r if cpid else -1, deadline, cap)
    killed = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    _kill(pid, isolated)
    _, status, usage = os.wait4(pid, 0)
    if cpid:
        _kill(cpid, True)
        os.waitpid(cpid, 0)
        _pump(streams, open_fds, -1, -1, time.monotonic() + 0.2, cap)  # what stderr got before the kill
    os.close(done_fd)
    for fd in streams:
        os.close(fd)
    if workdir:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)

    def text(fd: int) -> str | None:
        return streams[fd].decode("utf-8", "replace") if fd >= 0 else None

    return {
        "rc": os.waitstatus_to_exitcode(status),
        "stdout": text(out_r) or "",
        "stderr": text(err_r),
        "result": text(res_r),
        "wall": wall,
        "truncated": truncated,
        "killed": killed,
        "duration": time.monotonic() - start,
        "cpu": usage.ru_utime + usage.ru_stime,
    }


def _pump(
    streams: dict[int, bytearray], open_fds: set[int], done_fd: int, need_fd: int, deadline: float, cap: int
) -> tuple[bool, bool]:
    """Read ``open_fds`` until ``done_fd`` (a pidfd) is ready and they (or just ``need_fd``) have closed.

    Returns (the deadline passed, a stream passed ``cap``)."""
    poll = select.poll()
    for fd in open_fds | ({done_fd} if done_fd >= 0 else set()):
        poll.register(fd, select.POLLIN)
    exited = done_fd < 0
    while not (exited and (need_fd not in open_fds if need_fd >= 0 else not open_fds)):
        left = deadline - time.monotonic()
        if left <= 0:
            return True, False
        for fd, _ in poll.poll(left * 1000):
            if fd == done_fd:
                exited = True
                poll.unregister(fd)
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                open_fds.discard(fd)
                poll.unregister(fd)
                continue
            buf = streams[fd]
            buf += chunk
            if len(buf) > cap:
                del buf[cap:]
                return False, True
    return False, False


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
    res = execute({"mode": "program", "code": probe, "limits": {**limits, "out_bytes": 1000}}, {}, isolated)
    info["probe"] = {"rc": res["rc"], "stdout": res["stdout"].strip(), "stderr": (res["stderr"] or "")[-500:]}
    return info


def main() -> None:
    isolated = sys.argv[1] == "bwrap"
    sock = socket.socket(fileno=int(sys.argv[2]))
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "dumpable")  # nothing here is readable via /proc
    _reply(sock, {"ready": _self_test(isolated)})
    while True:
        head, fds = _recv_exact(sock, 4, with_fds=True)
        if len(head) < 4:
            return  # the host went away
        req = json.loads(_recv_exact(sock, struct.unpack(">I", head)[0])[0])
        named = dict(zip(req.pop("fds"), fds, strict=True))
        try:
            reply = execute(req, named, isolated)
        except Exception as e:  # the worker's own failure: the host replaces it
            reply = {"error": f"{type(e).__name__}: {e}"}
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
