"""The host's end of one warm worker: its process, its socket, and the framing on that socket.

Requests are a 4-byte length and a small JSON header, with the execution's memfds attached to the
first bytes (SCM_RIGHTS); replies are a 4-byte length and JSON. The worker's own stderr (and
bwrap's) goes to an unlinked temp file that is read only to explain a failure.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import tempfile
from typing import Any

from z1data.sandbox.base import SandboxUnavailable

START_TIMEOUT_S = 30.0


class Worker:
    """One warm worker process and the host end of its socket."""

    def __init__(self, argv: list[str]) -> None:
        host, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 -- bwrap's and the worker's stderr, read on failure
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
