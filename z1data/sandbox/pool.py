"""The sandbox the judge uses: a pool of warm workers, one per core, each already inside bubblewrap.

Starting an isolated interpreter costs ~20 ms; forking a warm one costs ~1 ms. So each worker starts
once (``bwrap.worker_command``), proves at start-up that its isolation works (new namespaces, no
network, unprivileged), and then forks one child per execution (``worker.py``). A worker that
dies, hangs or misbehaves is killed and replaced; its execution reports a failure, never a pass.

Data crossing the boundary: the request as JSON over a Unix socket, stdin and the secret check code
as sealed memfds (the worker passes fds on without reading them), replies as JSON of plain data.
Time limits are multiplied by ``time_factor`` (the machine's calibration, see ``calibrate.py``).
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import signal
import socket
import struct
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from loguru import logger

from z1data.sandbox.base import ExecResult, Job, Limits, Sandbox, SandboxUnavailable
from z1data.sandbox.bwrap import find_bwrap, worker_command

Isolation = Literal["bwrap", "none"]
UNISOLATED_WARNING = (
    "SANDBOX ISOLATION IS OFF (isolation='none'): untrusted code runs as this user, with the network, "
    "the file system and this machine's processes in reach. Use only for trusted code."
)
START_TIMEOUT_S = 30.0
REPLY_GRACE_S = 10.0  # beyond the wall limit before a silent worker counts as hung


class _Worker:
    """One warm worker process and the host end of its socket."""

    def __init__(self, argv: list[str]) -> None:
        host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log = tempfile.TemporaryFile()  # bwrap's and the worker's own stderr, read on failure
        try:  # the worker learns its socket's fd number from argv; bwrap passes fds through unchanged
            self.proc = subprocess.Popen(
                [*argv, str(child.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=self.log,
                stderr=self.log,
                pass_fds=(child.fileno(),),
                start_new_session=True,
            )
        finally:
            child.close()
        self.sock = host
        try:
            self.info = self._recv(START_TIMEOUT_S)["ready"]
        except Exception as e:
            self.kill()
            raise SandboxUnavailable(f"the sandbox worker did not start: {e}. {self.stderr()}".strip()) from e

    def exchange(self, req: dict[str, Any], fds: list[int], timeout: float) -> dict[str, Any]:
        body = json.dumps(req).encode()
        self.sock.settimeout(timeout)
        socket.send_fds(self.sock, [struct.pack(">I", len(body))], fds)
        self.sock.sendall(body)
        return self._recv(timeout)

    def _recv(self, timeout: float) -> dict[str, Any]:
        self.sock.settimeout(timeout)
        (n,) = struct.unpack(">I", self._exact(4))
        return json.loads(self._exact(n))

    def _exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("the worker closed its socket")
            buf += chunk
        return bytes(buf)

    def stderr(self) -> str:
        try:
            self.log.seek(0)
            return self.log.read()[-2000:].decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        self.sock.close()
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # bwrap and, through --die-with-parent, all inside
        self.proc.wait()
        self.log.close()


class WorkerPool(Sandbox):
    """Warm, isolated workers behind ``Sandbox.execute``; thread-safe; ``close()`` when done."""

    def __init__(self, isolation: Isolation = "bwrap", workers: int | None = None, time_factor: float = 1.0) -> None:
        if isolation not in ("bwrap", "none"):
            raise ValueError(f"isolation must be 'bwrap' or 'none', not {isolation!r}")
        self.isolation_mode = isolation
        self.name = "bwrap-pool" if isolation == "bwrap" else "unisolated-pool"
        self.isolation = (
            "bubblewrap namespaces (user, pid, mount, net, ipc, uts) + per-execution namespaces, rlimits, no network"
            if isolation == "bwrap"
            else "NONE: rlimits and a private cwd only"
        )
        self.size = workers or len(os.sched_getaffinity(0))
        self.time_factor = time_factor
        self._argv = worker_command(isolation)
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._live: set[_Worker] = set()
        self._closed = False
        self.replaced = 0
        with ThreadPoolExecutor(self.size) as ex:
            started = [ex.submit(self._start) for _ in range(self.size)]
        errors = [f.exception() for f in started if f.exception()]
        if errors:
            self.close()
            raise errors[0]  # type: ignore[misc]
        first = next(iter(self._live))
        self.info = first.info
        self._verify(first.info)
        for w in self._live:
            self._idle.put(w)
        if isolation == "none":
            logger.warning(UNISOLATED_WARNING)

    def _start(self) -> _Worker:
        w = _Worker(self._argv)
        with self._lock:
            self._live.add(w)
        return w

    def _verify(self, info: dict[str, Any]) -> None:
        """Refuse to run unless the worker proved what the isolation promises."""
        probe = info.get("probe", {})
        if probe.get("rc") != 0:
            self.close()
            raise SandboxUnavailable(f"sandbox self-test failed: {probe.get('stderr', '').strip()[-500:]}")
        if self.isolation_mode == "none":
            return
        problems = []
        if info.get("uid") == 0:
            problems.append("uid 0 inside")
        if set(info.get("interfaces", [])) - {"lo"}:
            problems.append(f"network interfaces {info['interfaces']}")
        if probe.get("stdout") != "1 1":  # PID 1 of its own namespace, seeing only itself
            problems.append(f"per-execution PID namespace missing ({probe.get('stdout')!r})")
        if problems:
            self.close()
            raise SandboxUnavailable("sandbox isolation check failed: " + "; ".join(problems))

    def execute(self, job: Job, limits: Limits) -> ExecResult:
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        lim = _wire_limits(limits.scaled(self.time_factor))
        fds, names = [], []
        if job.stdin:
            fds.append(_memfd(job.stdin.encode("utf-8", "surrogateescape")))
            names.append("stdin")
        if job.mode == "check":
            secret = {"check": job.check_code, "entry_point": job.entry_point, "helpers": job.helpers}
            fds.append(_memfd(json.dumps(secret).encode()))
            names.append("secret")
        req = {"mode": job.mode, "code": job.code, "fn_name": job.fn_name, "args_json": job.args_json}
        req.update(limits=lim, fds=names)
        worker = self._idle.get()
        try:
            reply = worker.exchange(req, fds, lim["wall_s"] + REPLY_GRACE_S)
            if "error" in reply:
                raise RuntimeError(reply["error"])
        except Exception as e:
            logger.warning(f"sandbox worker failed ({type(e).__name__}: {e}); replacing it. {worker.stderr()}")
            self._replace(worker)
            hung = isinstance(e, TimeoutError)
            return ExecResult(-signal.SIGKILL, "", f"sandbox worker failed: {e}", hung, False, False, lim["wall_s"])
        finally:
            for fd in fds:
                os.close(fd)
        self._idle.put(worker)
        return _result(reply, lim)

    def _replace(self, worker: _Worker) -> None:
        with self._lock:
            self._live.discard(worker)
            self.replaced += 1
        worker.kill()
        if self._closed:
            return
        for attempt in range(3):
            try:
                self._idle.put(self._start())
                return
            except SandboxUnavailable:
                if attempt == 2:
                    raise

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "isolation": self.isolation_mode,
            "summary": self.isolation,
            "workers": self.size,
            "time_factor": self.time_factor,
            "python": self.info.get("python"),
            "uid_inside": self.info.get("uid"),
            "defaults": Limits().__dict__ | {"wall_s": "2 * time_s * time_factor + 1"},
        }
        if self.isolation_mode == "bwrap":
            from z1data.sandbox.bwrap import bwrap_version

            d["bwrap"] = {"path": find_bwrap(), "version": bwrap_version(find_bwrap())}
        else:
            d["warning"] = UNISOLATED_WARNING
        return d

    def close(self) -> None:
        self._closed = True
        with self._lock:
            live, self._live = list(self._live), set()
        for w in live:
            w.kill()


def _wire_limits(limits: Limits) -> dict[str, Any]:
    return {
        "cpu_s": limits.time_s,
        "wall_s": limits.wall_s,
        "memory_mb": limits.memory_mb,
        "file_mb": limits.max_file_size_mb,
        "files": limits.max_open_files,
        "processes": limits.max_processes,
        "tmp_mb": limits.max_tmp_mb,
        "out_bytes": limits.max_output_bytes,
    }


def _memfd(data: bytes) -> int:
    """A sealed, read-only-for-everyone in-memory file holding ``data``, positioned at its start."""
    fd = os.memfd_create("z1", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    return fd


def _result(reply: dict[str, Any], lim: dict[str, Any]) -> ExecResult:
    """Name what happened from the worker's raw facts (exit status, CPU time, who killed whom)."""
    rc, cpu, stderr = reply["rc"], reply["cpu"], reply["stderr"] or ""
    we_killed = reply["wall"] or reply["truncated"] or reply.get("killed", False)
    cpu_hit = rc == -signal.SIGXCPU or cpu > lim["cpu_s"]  # rusage catches a program that ignores SIGXCPU
    tail = stderr.rstrip().rsplit("\n", 1)[-1]
    memory = rc != 0 and (
        tail.startswith("MemoryError")
        or "out of memory" in tail
        or (rc in (-signal.SIGKILL, -signal.SIGSEGV) and not we_killed and not cpu_hit)
    )
    return ExecResult(
        returncode=rc,
        stdout=reply["stdout"],
        stderr=stderr,
        timed_out=reply["wall"] or cpu_hit,
        memory_exceeded=memory,
        output_truncated=reply["truncated"],
        duration_s=reply["duration"],
        cpu_s=cpu,
        result=reply["result"],
    )
