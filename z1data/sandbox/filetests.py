"""Test files in the check driver: pytest or unittest runs the file against the solution as a module.

KodCode-style tests are files that ``from solution import f`` and define ``test_*`` functions (pytest) or
``TestCase`` classes (unittest). Here, in the trusted driver, the file runs under the real framework;
``solution`` is a module whose attributes live in the solution's process (``bridge.py``), so the solution
can neither patch the framework nor fake its report. One result per test, as the framework reports it:
``passed``, ``failed`` (an assertion, or an answer that cannot cross) or ``error`` (any other exception,
a failing fixture, a file that does not collect). Skipped tests are not counted. Stdlib only, but pytest
must be importable in the driver: the sandbox mounts it read-only (``FRAMEWORK_PATH``, ``bwrap.py``).
"""

from __future__ import annotations

import builtins
import os
import shutil
import sys
import tempfile
import types
from typing import Any

#: Where pytest and its dependencies are: mounted read-only at /z1/fw (``bwrap.py``); the unisolated
#: worker is told this environment's directories instead. Added to the driver's ``sys.path`` only.
FRAMEWORK_PATH = ["/z1/fw"]
DETAIL = 300


def preload() -> None:
    """Import pytest once in the warm worker: every driver forks with it loaded (the import is most of a
    test file's cost, ``bench/filetests.py``). The path is added for the import only."""
    paths = [p for p in FRAMEWORK_PATH if os.path.isdir(p)]
    if not paths:
        return
    sys.path[:0] = paths
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        import pytest  # noqa: F401
    except Exception:
        pass  # a test file then reports why
    finally:
        del sys.path[: len(paths)]


def forget() -> None:
    """In the solution's process: drop the framework's modules that ``preload`` imported, so a solution sees
    no more than the standard library (and the sandbox env) unless it goes looking for the files."""
    os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD", None)  # set for the driver's pytest, not the solution
    roots = tuple(os.path.join(p, "") for p in FRAMEWORK_PATH)
    for name, mod in list(sys.modules.items()):
        if str(getattr(mod, "__file__", None) or "").startswith(roots):
            del sys.modules[name]


class SolutionModule(types.ModuleType):
    """``import solution``: every attribute is fetched from the solution's process on use."""

    def __init__(self, name: str, rpc: Any, names: list[str]) -> None:
        super().__init__(name)
        self.__dict__["_rpc"] = rpc
        self.__dict__["_names"] = [n for n in names if n not in builtins.__dict__]

    def __getattr__(self, name: str) -> Any:
        if name == "__all__":  # ``from solution import *``: never over a name the test file bound before it
            importer = sys._getframe(1).f_globals
            return [n for n in self.__dict__["_names"] if n not in importer]
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self.__dict__["_rpc"].request("global", [name])


def _clip(text: str) -> str:
    return text if len(text) <= DETAIL else text[: DETAIL - 3] + "..."


def _status(exc: BaseException | None, fatal: tuple[type[BaseException], ...]) -> str:
    if exc is None:
        return "passed"
    if isinstance(exc, AssertionError) or type(exc).__name__ == "_NotPlain":
        return "failed"
    return "ended" if isinstance(exc, fatal[:1]) else "error"


def run(secret: dict[str, Any], rpc: Any, names: list[str], fatal: tuple[type[BaseException], ...]) -> list[dict]:
    """Run the test file in ``secret`` (``framework``: pytest | unittest); one dict per test."""
    sys.modules[secret.get("module") or "solution"] = SolutionModule(secret.get("module") or "solution", rpc, names)
    sys.dont_write_bytecode = True
    if secret["framework"] == "unittest":
        return _unittest(secret["check"], fatal)
    return _pytest(secret["check"], fatal)


class _Never(BaseException):
    """Inline mode has no channel to lose."""


def run_inline(code: str, framework: str) -> list[dict]:
    """Inline mode (``harness.run_inline``): the test file in the solution's own process."""
    sys.dont_write_bytecode = True
    return _unittest(code, (_Never,)) if framework == "unittest" else _pytest(code, (_Never,))


# ---------------------------------------------------------------- unittest
def _unittest(code: str, fatal: tuple[type[BaseException], ...]) -> list[dict]:
    import unittest

    mod = types.ModuleType("test_solution")
    mod.__file__ = "test_solution.py"
    sys.modules["test_solution"] = mod
    exec(compile(code, "test_solution.py", "exec", dont_inherit=True), mod.__dict__)
    results: list[dict] = []

    class Collect(unittest.TestResult):
        def addSuccess(self, test: Any) -> None:
            results.append({"name": test.id(), "status": "passed", "detail": ""})

        def addFailure(self, test: Any, err: Any) -> None:
            results.append({"name": test.id(), "status": "failed", "detail": _clip(f"{err[0].__name__}: {err[1]}")})

        def addError(self, test: Any, err: Any) -> None:
            status = _status(err[1], fatal)
            results.append({"name": test.id(), "status": status, "detail": _clip(f"{err[0].__name__}: {err[1]}")})

        def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
            if err is not None:
                status = _status(err[1], fatal)
                detail = _clip(f"{err[0].__name__}: {err[1]}")
                results.append({"name": subtest.id(), "status": status, "detail": detail})

        def addUnexpectedSuccess(self, test: Any) -> None:
            results.append({"name": test.id(), "status": "failed", "detail": "unexpected success"})

        def addExpectedFailure(self, test: Any, err: Any) -> None:
            results.append({"name": test.id(), "status": "passed", "detail": "expected failure"})

    unittest.defaultTestLoader.loadTestsFromModule(mod).run(Collect())
    return results


# ---------------------------------------------------------------- pytest
def _pytest(code: str, fatal: tuple[type[BaseException], ...]) -> list[dict]:
    sys.path[:0] = [p for p in FRAMEWORK_PATH if os.path.isdir(p) and p not in sys.path]  # ours, not an env's
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no plugin of the environment runs
    try:
        import pytest
    except ImportError as e:
        raise RuntimeError(f"pytest is not available in the sandbox ({e})") from None
    results: list[dict] = []

    class Collect:
        def pytest_collectreport(self, report: Any) -> None:
            if report.failed:
                results.append({"name": report.nodeid or "<collect>", "status": "error", "detail": _long(report)})

        def pytest_runtest_logreport(self, report: Any) -> None:
            if report.when == "call" and report.passed:
                results.append({"name": report.nodeid, "status": "passed", "detail": ""})
            elif report.failed:
                crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
                msg = str(getattr(crash, "message", "") or "")
                kind = msg.split(":", 1)[0].rsplit(".", 1)[-1] if not msg.startswith("assert ") else "AssertionError"
                status = {"AssertionError": "failed", "Failed": "failed", "_NotPlain": "failed", "_Ended": "ended"}.get(
                    kind, "error"
                )  # Failed: pytest.fail, "DID NOT RAISE"
                results.append({"name": report.nodeid, "status": status, "detail": _clip(msg or _long(report))})

    workdir = tempfile.mkdtemp(prefix="z1tests-")
    try:
        path = os.path.join(workdir, "test_solution.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(code)
        args = [path, "-q", "-p", "no:cacheprovider", "-p", "no:stepwise", "--rootdir", workdir]
        args += ["-c", os.devnull, "--import-mode=importlib", "-o", "python_files=test_solution.py"]
        pytest.main(args, plugins=[Collect()])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def _long(report: Any) -> str:
    try:
        return _clip(str(report.longreprtext).strip().splitlines()[-1])
    except Exception:
        return "collection failed"
