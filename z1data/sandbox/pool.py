"""The sandbox the judge uses: a pool of warm workers, one per core, each already inside bubblewrap.

Starting an isolated interpreter costs ~20 ms; forking a warm one costs ~1 ms. So each worker starts
once (``bwrap.worker_command``), proves at start-up that its isolation works (new namespaces, no
network, unprivileged), and then forks one child per execution (``worker.py``). A worker that
dies, hangs or misbehaves is killed and replaced; its execution reports a failure, never a pass.

Data crossing the boundary: a small header (mode, limits) over a Unix socket; the code, stdin and the
secret check code in sealed memfds, and stdout, stderr and results in size-capped memfds, which the
worker hands to the execution without reading them (see ``worker.py`` for why); results are plain data.
Time limits are multiplied by ``time_factor`` (the machine's calibration, see ``calibrate.py``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import signal
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

from loguru import logger

from z1data.sandbox.base import ExecResult, Job, Limits, Sandbox, SandboxUnavailable
from z1data.sandbox.bwrap import bwrap_candidates, bwrap_version, env_identity, env_site, worker_command
from z1data.sandbox.calibrate import REFERENCE_CPU_S
from z1data.sandbox.client import Worker
from z1data.sandbox.jail import memfd_in, memfd_out, read_out

Isolation = Literal["bwrap", "none"]
UNISOLATED_WARNING = (
    "SANDBOX ISOLATION IS OFF (isolation='none'): untrusted code runs as this user, with the network, "
    "the file system and this machine's processes in reach. Use only for trusted code."
)
UNAVAILABLE_HINT = (
    "bubblewrap needs unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1 and "
    "user.max_user_namespaces>0; on Ubuntu 24.04 use the distro's /usr/bin/bwrap, which AppArmor allows; "
    "in Docker, a seccomp profile that permits unshare/clone with namespace flags). See docs/sandbox.md. "
    "To run untrusted code WITHOUT isolation anyway, ask for isolation='none' explicitly."
)
REPLY_GRACE_S = 10.0  # beyond the wall limit before a silent worker counts as hung
MAX_RESULT_BYTES = 8 << 20  # a call's return value, as plain-data JSON


class WorkerPool(Sandbox):
    """Warm, isolated workers behind ``Sandbox.execute``; thread-safe; ``close()`` when done. ``env``: a Python
    environment (venv or prefix) whose site-packages the code may import from, mounted read-only."""

    def __init__(
        self,
        isolation: Isolation = "bwrap",
        workers: int | None = None,
        time_factor: float = 1.0,
        env: str | Path | None = None,
    ) -> None:
        if isolation not in ("bwrap", "none"):
            raise ValueError(f"isolation must be 'bwrap' or 'none', not {isolation!r}")
        self.env, self.site = (str(env), env_site(env)) if env else (None, "")
        self.isolation_mode = isolation
        self.name = "bwrap-pool" if isolation == "bwrap" else "unisolated-pool"
        self.isolation = (
            "bubblewrap namespaces (user, pid, mount, net, ipc, uts) + per-execution namespaces, rlimits, no network"
            if isolation == "bwrap"
            else "NONE: rlimits and a private cwd only"
        )
        self.size = workers or len(os.sched_getaffinity(0))
        self.time_factor = time_factor
        self.bwrap = ""
        self._argv: list[str] = []
        self._idle: queue.SimpleQueue[Worker | None] = queue.SimpleQueue()  # None: closed or broken
        self._broken = ""
        self._lock = threading.Lock()
        self._live: set[Worker] = set()
        self._closed = False
        self.replaced = 0
        # bwrap --die-with-parent fires when the *thread* that started it ends: start workers from
        # threads that live as long as the pool, never from the caller's (a judge thread is short-lived)
        self._spawner = ThreadPoolExecutor(self.size, thread_name_prefix="sandbox-spawn")
        self._finalizer = weakref.finalize(self, _shutdown, self._live, self._lock, self._spawner)
        try:
            self.info = self._spawner.submit(self._first).result().info
            for f in [self._spawner.submit(self._start) for _ in range(self.size - 1)]:
                f.result()
        except BaseException:
            self.close()
            raise
        for w in self._live:
            self._idle.put(w)
        if isolation == "none":
            logger.warning(UNISOLATED_WARNING)

    def _first(self) -> Worker:
        """Start a worker with the first bwrap that passes the self-test, and keep its command line."""
        errors = []
        for bwrap in bwrap_candidates() if self.isolation_mode == "bwrap" else [""]:
            argv = worker_command(self.isolation_mode, bwrap, self.site)
            try:
                worker = Worker(argv)
            except SandboxUnavailable as e:
                errors.append(f"{bwrap or 'worker'}: {e}")
                continue
            if problems := _problems(worker.info, self.isolation_mode):
                worker.kill()
                errors.append(f"{bwrap or 'worker'}: isolation check failed: {problems}")
                continue
            self.bwrap, self._argv = bwrap, argv
            with self._lock:
                self._live.add(worker)
            return worker
        raise SandboxUnavailable(" | ".join(errors) + "; " + UNAVAILABLE_HINT)

    def _start(self) -> Worker:
        w = Worker(self._argv)
        with self._lock:
            self._live.add(w)
        return w

    def execute(self, job: Job, limits: Limits) -> ExecResult:
        if self._closed:
            raise RuntimeError("the sandbox is closed")
        lim = _wire_limits(limits.scaled(self.time_factor))
        payload = {"code": job.code, "fn_name": job.fn_name, "args_json": job.args_json}
        if job.mode == "check":  # the problem's own code runs first in the solution's process too (public)
            payload["prelude"], payload["setup"] = job.helpers, job.setup
        if job.mode == "inline":  # the tests run in the solution's process: nothing is secret
            payload |= {"tests": job.check_code, "framework": job.framework, "module": job.module}
        fds = {"payload": memfd_in(json.dumps(payload).encode()), "stderr": memfd_out(lim["out_bytes"])}
        if job.stdin:
            fds["stdin"] = memfd_in(job.stdin.encode("utf-8", "surrogateescape"))
        if job.mode == "program":
            fds["stdout"] = memfd_out(lim["out_bytes"])
        else:
            fds["result"] = memfd_out(MAX_RESULT_BYTES)
        if job.mode == "check":
            secret = {"check": job.check_code, "entry_point": job.entry_point, "helpers": job.helpers}
            secret["setup"] = job.setup
            secret |= {"framework": job.framework, "module": job.module} if job.framework else {}
            fds["secret"] = memfd_in(json.dumps(secret).encode())
        try:
            return self._exchange({"mode": job.mode, "limits": lim, "fds": list(fds)}, fds, lim)
        finally:
            for fd in fds.values():
                os.close(fd)

    def _exchange(self, req: dict[str, Any], fds: dict[str, int], lim: dict[str, Any]) -> ExecResult:
        worker = self._idle.get()
        if worker is None:  # closed, or a worker could not be replaced: wake the next waiter too
            self._idle.put(None)
            raise SandboxUnavailable(f"the sandbox is closed or broken: {self._broken or 'closed'}")
        try:
            reply = worker.exchange(req, list(fds.values()), lim["wall_s"] + REPLY_GRACE_S)
            if "error" in reply:
                raise RuntimeError(reply["error"])
        except Exception as e:
            logger.warning(f"sandbox worker failed ({type(e).__name__}: {e}); replacing it. {worker.stderr()}")
            self._replace(worker)
            hung = isinstance(e, TimeoutError)
            return ExecResult(-signal.SIGKILL, "", f"sandbox worker failed: {e}", hung, False, False, lim["wall_s"])
        self._idle.put(worker)
        out, out_over = read_out(fds["stdout"], lim["out_bytes"]) if "stdout" in fds else (b"", False)
        err, err_over = read_out(fds["stderr"], lim["out_bytes"])
        res, _ = read_out(fds["result"], MAX_RESULT_BYTES) if "result" in fds else (b"", False)
        reply.update(stdout=_text(out), stderr=_text(err), truncated=out_over or err_over)
        reply["result"] = _text(res) if "result" in fds else None
        return _result(reply, lim)

    def _replace(self, worker: Worker) -> None:
        with self._lock:
            self._live.discard(worker)
            self.replaced += 1
        worker.kill()
        if self._closed:
            return
        for attempt in range(3):
            try:
                self._idle.put(self._spawner.submit(self._start).result())
                return
            except SandboxUnavailable as e:
                if attempt == 2:
                    self._broken = str(e)
                    self._idle.put(None)
                    raise

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "name": self.name,
            "isolation": self.isolation_mode,
            "summary": self.isolation,
            "workers": self.size,
            "time_factor": self.time_factor,
            "calibration": {"reference_cpu_s": REFERENCE_CPU_S, "workload": "z1data.sandbox.calibrate.WORKLOAD"},
            "python": self.info.get("python"),
            "uid_inside": self.info.get("uid"),
            "defaults": dataclasses.asdict(Limits()) | {"wall_s": "2 * time_s * time_factor + 1"},
        }
        if self.env:  # what the code could import: in the verify stage's fingerprint too
            d["env"] = {"path": self.env, "site_packages": self.site} | env_identity(self.env)
        if self.isolation_mode == "bwrap":
            d["bwrap"] = {"path": self.bwrap, "version": bwrap_version(self.bwrap)}
        else:
            d["warning"] = UNISOLATED_WARNING
        return d

    def close(self) -> None:
        self._closed = True
        self._idle.put(None)
        self._finalizer()


def _shutdown(live: set[Worker], lock: threading.Lock, spawner: ThreadPoolExecutor) -> None:
    """Kill every worker (also run when a pool is garbage-collected without ``close()``)."""
    with lock:
        workers = list(live)
        live.clear()
    for w in workers:
        w.kill()
    spawner.shutdown(wait=False)


def _problems(info: dict[str, Any], isolation: str) -> str:
    """What the worker's self-test says is wrong with its isolation ("" when nothing)."""
    probe = info.get("probe", {})
    if probe.get("rc") != 0:
        return f"self-test execution failed: {probe.get('stderr', '').strip()[-500:]}"
    if isolation == "none":
        return ""
    problems = []
    if info.get("uid") == 0:
        problems.append("uid 0 inside")
    if set(info.get("interfaces", [])) - {"lo"}:
        problems.append(f"network interfaces {info['interfaces']}")
    if probe.get("stdout") != "1 1":  # PID 1 of its own namespace, seeing only itself
        problems.append(f"no per-execution PID namespace ({probe.get('stdout')!r})")
    return "; ".join(problems)


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


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _result(reply: dict[str, Any], lim: dict[str, Any]) -> ExecResult:
    """Name what happened from the worker's raw facts (exit status, CPU time, who killed whom)."""
    rc, cpu, stderr = reply["rc"], reply["cpu"], reply["stderr"] or ""
    we_killed = reply["wall"] or reply["truncated"] or reply["memory"] or reply["killed"]
    cpu_hit = rc == -signal.SIGXCPU or cpu > lim["cpu_s"]  # rusage catches a program that ignores SIGXCPU
    tail = stderr.rstrip().rsplit("\n", 1)[-1]
    memory = reply["memory"] or (
        rc != 0
        and (
            tail.startswith("MemoryError")
            or "out of memory" in tail
            or (rc in (-signal.SIGKILL, -signal.SIGSEGV) and not we_killed and not cpu_hit)
        )
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
