"""numpy/pandas values cross the check boundary by value (an allowlisted unpickler in the driver); other
packages' objects stay behind handles that ``isinstance`` recognises (``sandbox/packages.py``, ``bridge.py``).

Runs with this project's environment mounted as the sandbox env (numpy, pandas and matplotlib are installed
there, as BigCodeBench's tasks need them)."""

from __future__ import annotations

import sys

import pytest

from z1data.judge import judge
from z1data.records import FileTests, Problem, Tests
from z1data.sandbox import Limits, make_sandbox, packages

pytest.importorskip("pandas", reason="the sandbox env needs pandas for these tests")
pytest.importorskip("matplotlib", reason="the sandbox env needs matplotlib for these tests")

TEST = """
import unittest
import numpy as np
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
from solution import task_func, make_plot


class TestCases(unittest.TestCase):
    def test_frame(self):
        df = task_func(pd.DataFrame({"a": [1, 2, 3]}))
        pd.testing.assert_frame_equal(df, pd.DataFrame({"a": [1, 2, 3], "b": [2, 4, 6]}))

    def test_array(self):
        np.testing.assert_array_equal(task_func(pd.DataFrame({"a": [1]}))["b"].to_numpy(), np.array([2]))

    def test_plot(self):
        ax = make_plot()
        self.assertIsInstance(ax, plt.Axes)
        self.assertEqual(ax.get_title(), "t")
"""
GOOD = """
import pandas as pd
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt


def task_func(df):
    out = df.copy()
    out["b"] = out["a"] * 2
    return out


def make_plot():
    fig, ax = plt.subplots()
    ax.set_title("t")
    return ax
"""
PROBLEM = Problem("bcb-like", "q", Tests(file=FileTests(TEST, "unittest")))


@pytest.fixture(scope="module")
def sandbox():
    with make_sandbox(workers=1, calibrate=False, env=sys.prefix) as sb:
        yield sb


def statuses(code: str, sandbox) -> dict[str, str]:
    v = judge(PROBLEM, code, "s", sandbox, Limits(time_s=20.0))
    return {t.detail.split(":")[0].rsplit(".", 1)[-1]: t.status for t in v.tests}


def test_dataframes_and_arrays_cross_by_value_and_axes_as_handles(sandbox) -> None:
    assert statuses(GOOD, sandbox) == {"test_array": "passed", "test_frame": "passed", "test_plot": "passed"}
    wrong = statuses(GOOD.replace("* 2", "* 3").replace('"t"', '"u"'), sandbox)
    assert wrong == {"test_array": "failed", "test_frame": "failed", "test_plot": "failed"}


def test_a_forged_pickle_is_refused(sandbox) -> None:
    """The solution's process is untrusted: it can replace the encoder and send any pickle. The driver's
    unpickler only knows numpy/pandas reconstructors, so ``os.getpid`` (or anything else) is refused."""
    forge = (
        GOOD
        + """
import base64, pickle, sys
class _Call:
    def __reduce__(self):
        import os
        return (os.getpid, ())
sys.modules["packages"].dumps = lambda value: base64.b64encode(pickle.dumps(_Call(), protocol=4)).decode()
"""
    )
    v = judge(PROBLEM, forge, "s", sandbox, Limits(time_s=20.0))
    assert not v.passed
    frame = next(t for t in v.tests if "test_frame" in t.detail)
    assert frame.status != "passed" and "not a numpy/pandas reconstructor" in frame.detail


def test_a_handle_claiming_a_pandas_class_is_not_one(sandbox) -> None:
    """A solution's own class that says it is ``pandas.DataFrame`` stays a handle without that class: numpy
    and pandas values travel by value only, so the claim is never granted to ``isinstance``."""
    fake = """
class DataFrame:
    def __eq__(self, other):
        return True
DataFrame.__module__ = "pandas"

def task_func(df):
    return DataFrame()

def make_plot():
    return None
"""
    got = statuses(fake, sandbox)
    assert got["test_frame"] != "passed" and got["test_array"] != "passed"


def test_allowlist_is_numpy_and_pandas_reconstructors_only() -> None:
    allowed = packages.allowed()
    assert ("pandas", "DataFrame") in allowed and any(m.startswith("numpy") for m, _ in allowed)
    roots = {m.split(".")[0] for m, _ in allowed}
    assert roots <= {"numpy", "pandas", "pyarrow", "builtins", "datetime", "copyreg"}, roots
    assert not {("builtins", "eval"), ("builtins", "exec"), ("os", "system"), ("numpy", "memmap")} & allowed
