"""The one interface every sandbox implements.

A sandbox runs a Python program (source text) with some stdin under resource limits and reports what
happened; it knows nothing about problems or tests (that is ``z1data.judge``). The spine ships the
unhardened ``SubprocessSandbox``; a hardened one (bubblewrap namespaces, warm forking workers) drops in
behind the same ``run``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Self


@dataclass(frozen=True)
class Limits:
    """Per-execution limits. ``time_s`` is CPU time; the wall clock gets ``wall_s`` (slack for a busy box)."""

    time_s: float = 4.0
    memory_mb: int = 1024  # address space
    max_output_bytes: int = 1_000_000  # per stream; beyond it the program is killed
    max_processes: int = 64  # only where the sandbox can scope it (see SubprocessSandbox)
    max_open_files: int = 256
    max_file_size_mb: int = 16

    @property
    def wall_s(self) -> float:
        """Wall-clock limit: twice the CPU limit plus a second, so sleeping or blocked programs end too."""
        return self.time_s * 2 + 1

    def with_time(self, time_s: float | None) -> Limits:
        return self if time_s is None else replace(self, time_s=time_s)


@dataclass(frozen=True)
class ExecResult:
    """Outcome of one execution. ``returncode`` is negative (``-signal``) when a signal ended the program."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool  # wall-clock or CPU limit
    memory_exceeded: bool
    output_truncated: bool  # a stream passed max_output_bytes and the program was killed
    duration_s: float


class Sandbox(ABC):
    """Runs untrusted Python. ``run`` must be safe to call from several threads at once (``judge_many``)."""

    name: str = "abstract"
    isolation: str = ""  # one line saying what the sandbox does and does not protect against

    @abstractmethod
    def run(self, program: str, stdin: str, limits: Limits) -> ExecResult:
        """Run ``program`` (Python source) with ``stdin`` under ``limits``."""

    def close(self) -> None:  # noqa: B027 -- optional hook, deliberately not abstract
        """Release warm workers or other resources; nothing to do by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
