"""The one interface every sandbox implements.

A sandbox executes a ``Job`` under ``Limits`` and reports what happened as an ``ExecResult``; it knows
nothing about expected outputs or verdicts (that is ``z1data.judge``, which compares outside). Jobs:

* ``program``: a Python program run on ``stdin``; its stdout comes back to be compared.
* ``call``: the solution's ``fn_name(*args)``; the result comes back as plain data (``plain.py``).
* ``check``: assert-style test code (HumanEval's ``check(candidate)``) or a test file run against the
  solution; the test code is handed over out of the solution's reach, and only the driver's verdict comes back.
* ``inline``: a test file run in the solution's own process, as BigCodeBench's harness runs it (the tests
  see the solution's files, patches and random state; the solution could fake their report).

``z1data.sandbox.pool.WorkerPool`` is the implementation (bubblewrap-isolated warm workers, or an
explicitly unisolated variant).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, Self

JobMode = Literal["program", "call", "check", "inline"]


class SandboxUnavailable(RuntimeError):
    """Isolation cannot be set up on this machine (no bubblewrap, user namespaces disabled...)."""


@dataclass(frozen=True)
class Limits:
    """Per-execution limits, before the machine's calibration factor scales ``time_s``."""

    time_s: float = 4.0  # CPU seconds
    memory_mb: int = 1024  # address space, per process
    max_output_bytes: int = 1_000_000  # per stream; passing it kills the execution
    max_processes: int = 64  # processes + threads of one execution (its own user namespace)
    max_open_files: int = 256
    max_file_size_mb: int = 16
    max_tmp_mb: int = 64  # each of the execution's private /tmp and /dev/shm

    @property
    def wall_s(self) -> float:
        """Wall-clock limit: twice the CPU limit plus a second, so sleeping or blocked programs end too."""
        return self.time_s * 2 + 1

    def with_time(self, time_s: float | None) -> Limits:
        return self if time_s is None else replace(self, time_s=time_s)

    def with_memory(self, memory_mb: int | None) -> Limits:
        """A problem's own memory limit (CodeContests, TACO), floored at 64 MB: an interpreter needs that much."""
        return self if memory_mb is None else replace(self, memory_mb=max(64, memory_mb))

    def scaled(self, factor: float) -> Limits:
        return replace(self, time_s=self.time_s * factor)


@dataclass(frozen=True)
class Job:
    """What to execute. ``check_code`` and ``helpers`` are secret: the solution never gets to read them."""

    code: str
    mode: JobMode = "program"
    stdin: str = ""
    fn_name: str = ""  # call: a function, or a method of ``Solution`` (``Solution.method`` to be explicit)
    args_json: str = "[]"  # call
    check_code: str = ""  # check: defines check(candidate)
    entry_point: str = ""  # check: the candidate's name
    helpers: str | None = None  # check: the problem's own code (HumanEval's prompt), run before the solution
    setup: str = ""  # check: MBPP's setup code, run after the solution and before the asserts
    framework: str = ""  # check with a test file: "pytest" or "unittest" runs ``check_code`` as that file
    module: str = "solution"  # check with a test file: the module name the tests import the solution as


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
    cpu_s: float = 0.0
    result: str | None = None  # call: the reply (plain data); check: the driver's verdict (JSON)


class Sandbox(ABC):
    """Runs untrusted Python. ``execute`` must be safe to call from several threads at once (``judge_many``)."""

    name: str = "abstract"
    isolation: str = ""  # one line saying what the sandbox does and does not protect against

    @abstractmethod
    def execute(self, job: Job, limits: Limits) -> ExecResult:
        """Run ``job`` under ``limits``."""

    def run(self, program: str, stdin: str, limits: Limits) -> ExecResult:
        """Run ``program`` (Python source) with ``stdin``."""
        return self.execute(Job(program, stdin=stdin), limits)

    def describe(self) -> dict[str, Any]:
        """What a manifest records about this sandbox."""
        return {"name": self.name, "isolation": self.isolation}

    def close(self) -> None:  # noqa: B027 -- optional hook, deliberately not abstract
        """Release warm workers or other resources; nothing to do by default."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
