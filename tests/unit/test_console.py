"""The build console, checked by line counts and content: one line per stage, a summary, logs in files."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from loguru import logger
from rich.console import Console

from tests.conftest import TINY
from z1data.console import (
    LIBRARY_LOGGERS,
    BuildConsole,
    TaskSettings,
    build_console,
    count_warnings,
    iter_progress,
    library_logs,
    stage,
    task_output,
)

REPLAY_ONLY = "generate.teachers=[{name: canonical, backend: replay, replay: {kind: humaneval_canonical}}]"
STAGES = ("source", "generate", "verify", "bucket")
BANNERS = ("PIPELINE", "📉", "Stats:", "Launching pipeline", "Total Runtime", "%|")


def _build(data: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "z1data.cli", "build", str(TINY), "--version", "v1", "--data-dir", str(data)]
    # workers=2: source (one task) runs in this process, the other stages in a worker pool: both paths
    cmd += ["--set", REPLAY_ONLY, "--set", "shards=2", "--set", "executor.workers=2", *extra]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout + p.stderr
    return (p.stdout + p.stderr).splitlines()


@pytest.mark.slow
def test_build_console_without_a_tty(tmp_path: Path) -> None:
    data = tmp_path / "data"
    lines = _build(data)
    text = "\n".join(lines)
    assert len(lines) <= 15, text
    assert not [b for b in BANNERS if b in text], text
    for name in STAGES:  # one line per stage, naming it with its counts
        [line] = [x for x in lines if x.startswith(f"✓ {name} ")]
        assert re.search(r"in 164 +· +kept 164 +· +dropped 0", line), line
    [done] = [x for x in lines if x.startswith("built ")]
    content_hash = re.search(r"content hash ([0-9a-f]{64})", done)
    assert content_hash and str(data / "tiny" / "v1") in done
    rows = {x.split()[0]: x.split() for x in lines if x.split() and x.split()[0] in (*STAGES, "total")}
    assert set(rows) == {*STAGES, "total"} and rows["bucket"][1:3] == ["164", "164"]  # the summary table
    assert "warnings: 0" in text
    for d in (data / ".stages").iterdir():  # datatrove's output is in each stage's log, and its own task logs
        log = (d / "logs" / "stage.log").read_text()
        assert "Launching pipeline" in log and "Stats: All" in log, d
        assert list((d / "datatrove").glob("tasks-*/logs/task_00000.log")), d

    again = _build(data)  # up to date: two lines
    assert len(again) == 2 and again[0].startswith("up to date ") and content_hash.group(1) in again[0]


def test_warnings_are_counted_and_written_to_the_stage_log(tmp_path: Path) -> None:
    out = Console(file=io.StringIO(), width=120)
    stage_dir = tmp_path / ".stages" / "source-0123"
    with build_console(tmp_path / "build.log", out=out) as c:
        with stage("source", stage_dir, None) as p:
            settings = c.task_settings()
            assert settings.log_file == str(stage_dir / "logs" / "stage.log")
            with task_output(settings, None, 0):  # what a task's stderr writes goes to the stage log
                os.write(2, b"x.py:3: UserWarning: from a library\n")
            logger.warning("quarantined row 7")
            logger.info("not a warning")
            p.stats = {"rows_in": 3, "kept": 2, "dropped": {"bad_row": 1}}
        c.summary(tmp_path / "v1", 2, "ab" * 32, "built")
    shown = out.file.getvalue()  # type: ignore[attr-defined]
    log = (stage_dir / "logs" / "stage.log").read_text()
    assert "quarantined row 7" in log and "from a library" in log and "not a warning" in log
    assert count_warnings(stage_dir / "logs" / "stage.log") == 2
    assert "warnings: 2" in shown and "bad_row 1" in shown and "ab" * 32 in shown
    assert "quarantined" not in shown and "from a library" not in shown
    assert len(shown.splitlines()) <= 8, shown


def test_without_a_console_nothing_changes(tmp_path: Path) -> None:
    with stage("source", tmp_path, None) as p:  # library use: no console, no files
        p.stats = {"rows_in": 0, "kept": 0, "dropped": {}}
    assert not (tmp_path / "logs").exists()
    with task_output(None, None, 0):
        pass
    assert BuildConsole(tmp_path / "b.log", out=Console(file=io.StringIO())).task_settings() == TaskSettings(None, None)


def test_library_logs_go_to_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import logging

    from transformers.utils import logging as hf_logging

    monkeypatch.delenv("Z1DATA_VERBOSE", raising=False)
    saved = {n: (list(logging.getLogger(n).handlers), logging.getLogger(n).propagate) for n in LIBRARY_LOGGERS}
    log = library_logs(tmp_path / "train.log")
    try:
        hf_logging.get_logger("transformers.modeling_utils").warning("weights not initialized")
        logging.getLogger("datasets.builder").warning("generating split")
        logger.warning("from loguru")
    finally:
        logger.remove()
        logger.add(sys.stderr)
        hf_logging.enable_default_handler()
        logging.captureWarnings(False)
        for n, (handlers, propagate) in saved.items():
            logging.getLogger(n).handlers, logging.getLogger(n).propagate = handlers, propagate
    text = log.read_text()
    assert "weights not initialized" in text and "generating split" in text and "from loguru" in text
    assert "weights not initialized" not in capsys.readouterr().err


def test_iter_progress_without_a_tty_prints_one_line() -> None:
    out = Console(file=io.StringIO(), width=120)
    assert list(iter_progress(iter(range(5)), 5, "verify", out)) == [0, 1, 2, 3, 4]
    [line] = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert line.startswith("✓ verify") and "5/5" in line
