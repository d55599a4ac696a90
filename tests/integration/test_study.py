"""The Z1 study's machinery end to end, reduced (``scripts/study.py --quick``): three versions of smol's real
trajectories (short-only, long-only, mixed), each trained and evaluated with smol as the student, the untrained
model evaluated alike, one report. The full run is a benchmark (``make study``, docs/study.md), not a test:
here 6 problems, 128-token answers, 2 training steps and 2 eval problems check the wiring, not the numbers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO, require_smol

pytestmark = pytest.mark.slow
require_smol()


def _study(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, str(REPO / "scripts" / "study.py"), "--quick", "--data-dir", str(tmp_path / "data")]
    cmd += ["--models-dir", str(tmp_path / "models"), "--out", str(tmp_path / "report")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=1500, cwd=tmp_path)


def test_quick_study_builds_trains_evaluates_and_reports(tmp_path: Path) -> None:
    run = _study(tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    study = json.loads((tmp_path / "report" / "study.json").read_text())
    data = {d["version"]: d for d in study["data"]}
    assert set(data) == {"study/short-only/v1", "study/long-only/v1", "study/mixed/v1"}
    for name, want in (("short-only", {"short"}), ("long-only", {"long"}), ("mixed", {"short", "long"})):
        df = pl.read_parquet(tmp_path / "data" / "study" / name / "v1" / "data" / "*.parquet")
        assert set(df["bucket"]) == want and df.height == data[f"study/{name}/v1"]["rows"] > 0
        assert set(df["teacher"]) <= {"smol-stepwise", "smol-terse"}
    mixed = data["study/mixed/v1"]
    assert mixed["short"] == mixed["long"]  # half and half
    runs = study["runs"]
    assert [r["label"] for r in runs] == [
        "smol:135m (untrained)",
        "study/short-only/v1",
        "study/long-only/v1",
        "study/mixed/v1",
    ]
    for r in runs:
        assert [b["budget"] for b in r["budgets"]] == [16, 32] and r["offset"] == 100 and r["problems"] == 2
    assert all(r["train"]["steps"] == 2 for r in runs[1:])
    report = (tmp_path / "report" / "report.md").read_text()
    assert "## Data" in report and "study/mixed/v1" in report
    assert all((tmp_path / "report" / f).stat().st_size for f in ("scaling.png", "tokens.png"))

    again = _study(tmp_path)  # everything is done: versions up to date, models reused, evals from their journals
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("is up to date (same config and content hash)") == 3
    rerun = json.loads((tmp_path / "report" / "study.json").read_text())["runs"]
    assert [r["budgets"] for r in rerun] == [r["budgets"] for r in runs]
    assert all(r["requests_sent"] == 0 for r in rerun)
