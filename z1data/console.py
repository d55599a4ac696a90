"""The build console: one progress line per stage, a closing summary, and every library log in a file.

Why: datatrove prints a banner and an emoji stat block per task, transformers and tqdm add bars, and a warning
scrolls past in the flood. Here the driver owns the terminal: a running stage's task stderr (datatrove's sink,
tqdm, warnings, subprocesses) goes to ``<stage dir>/logs/stage.log``, datatrove's per-task log stays in
``<stage dir>/datatrove/tasks-N/logs/``; the terminal gets one line per stage (live on a TTY, else one at the
end plus one every ``PLAIN_EVERY_S``) and a summary counting the warnings in those logs (``-v`` /
``Z1DATA_VERBOSE=1``: logs live). The driver side is :class:`BuildConsole` (installed by the CLI), the task side
:func:`task_output` (run by ``executors.LocalExecutor`` around each task); without a console (library use,
tests, Slurm nodes) both are no-ops. Progress: each task's step counters, sampled into ``logs/progress/<rank>.json``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

T = TypeVar("T")
VERBOSE_ENV = "Z1DATA_VERBOSE"
PLAIN_EVERY_S = 30.0  # not a TTY: at most one progress line per this many seconds per stage
SAMPLE_S = 1.0  # how often a task writes its counters
LOG_FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"
WARNING_RE = re.compile(r"\| WARNING +\| |:\d+: \w*Warning: ")


def verbose() -> bool:
    """``-v``: library logs live on the terminal, no live line (they would collide)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def count_warnings(path: Path, offset: int = 0) -> int:
    """Warning lines (loguru's WARNING level, Python warnings) written to ``path`` after ``offset``."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return 0
    return sum(1 for line in text.splitlines() if WARNING_RE.search(line))


def fmt_s(s: float) -> str:
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def fmt_rate(per_s: float, unit: str = "rows") -> str:
    """A rate a person can read: a slow generate stage shows rows/min, not "0.0 rows/s"."""
    return f"{per_s:.1f} {unit}/s" if per_s >= 1 or per_s == 0 else f"{per_s * 60:.1f} {unit}/min"


# ---------------------------------------------------------------- task side
@dataclass(frozen=True)
class TaskSettings:
    """What a task needs to know, set on the executor in the driver (a forked worker has no console)."""

    log_file: str | None  # the stage log its stderr goes to (None: leave stderr alone, e.g. -v)
    progress_dir: str | None  # where it samples its counters (None: no console)


def _counters(step: Any) -> dict[str, int]:
    """A step's datatrove counters: kept, rows_in (per finished shard), dropped (all ``dropped_*`` summed)."""
    try:  # the task thread may add a key while we copy: skip this sample, the next one (or the last) counts
        stats = {k: int(v.total) for k, v in dict(getattr(getattr(step, "stats", None), "stats", {})).items()}
    except RuntimeError:
        return {}
    dropped = sum(v for k, v in stats.items() if k.startswith("dropped_"))
    requests = stats.get("requests_done", 0)  # generate: answered requests, before its shard is written
    return {"kept": stats.get("kept", 0), "rows_in": stats.get("rows_in", 0), "dropped": dropped, "requests": requests}


def _write_counters(path: Path, step: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_counters(step)))
    os.replace(tmp, path)


@contextmanager
def task_output(settings: TaskSettings | None, step: Any, rank: int) -> Iterator[None]:
    """Around one datatrove task: sample its step's counters for the driver, send its stderr (fd 2: subprocesses
    and C libraries too) to the stage log, restore the driver's logging after a task in its process."""
    if settings is None:
        yield
        return
    stop = threading.Event()
    sampler = None
    if settings.progress_dir:
        path = Path(settings.progress_dir) / f"{rank:05d}.json"
        path.parent.mkdir(parents=True, exist_ok=True)

        def sample() -> None:
            while not stop.wait(SAMPLE_S):
                _write_counters(path, step)

        sampler = threading.Thread(target=sample, name="z1data-progress", daemon=True)
        sampler.start()
    saved = None
    if settings.log_file:
        sys.stderr.flush()
        Path(settings.log_file).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(settings.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        saved = os.dup(2)
        os.dup2(fd, 2)
        os.close(fd)
    try:
        yield
    finally:
        stop.set()
        if sampler is not None:
            sampler.join()
            _write_counters(path, step)
        if saved is not None:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        if _CONSOLE is not None:
            _CONSOLE.install_logging()


# ---------------------------------------------------------------- driver side
@dataclass
class StageRecord:
    """One stage as the summary shows it."""

    name: str
    dir: Path
    rows_in: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False
    warnings: int = 0


@dataclass
class StageProgress:
    """The running stage: counts so far (finished runs set ``stats``)."""

    record: StageRecord
    expected: int | None
    fans_out: bool
    progress_dir: Path
    started: float = field(default_factory=time.monotonic)
    stats: dict[str, Any] | None = None
    ran: bool = False  # an executor was made for it (else every shard was already done: cached)
    live: Any = None

    def counts(self) -> tuple[int, int, int]:
        """(rows in, kept, requests answered) so far in this run, summed over the tasks' sampled counters."""
        rows_in = kept = requests = 0
        for f in self.progress_dir.glob("*.json"):
            try:
                c = json.loads(f.read_text())
            except (OSError, ValueError):
                continue
            rows_in += c.get("rows_in", 0) if self.fans_out else c.get("kept", 0) + c.get("dropped", 0)
            kept += c.get("kept", 0)
            requests += c.get("requests", 0)
        return rows_in, kept, requests

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        rows_in, kept, requests = self.counts()
        total = f"/{self.expected}" if self.expected is not None else ""
        head = [f"{self.record.name:<12} in {rows_in}{total}", f"kept {kept}"]
        parts = head + ([f"{requests} requests"] if requests else [])
        if rows_in and elapsed > 0:
            rate = rows_in / elapsed
            parts.append(fmt_rate(rate))
            if self.expected:
                parts.append(f"ETA {fmt_s(max(self.expected - rows_in, 0) / rate)}")
        parts.append(fmt_s(elapsed))
        return "  ·  ".join(parts)


class BuildConsole:
    """The terminal of one ``z1data build``: install it around ``run.build`` (see :func:`build_console`)."""

    def __init__(self, log_file: Path, *, is_verbose: bool = False, out: Any = None):
        from rich.console import Console

        self.log_file = log_file
        self.verbose = is_verbose
        self.out = out or Console(soft_wrap=True)
        self.stages: list[StageRecord] = []
        self.current: StageProgress | None = None
        self.log_offset = 0
        self.started = time.monotonic()

    def _sink(self, message: Any) -> None:
        if self.current is None and message.record["level"].no >= 30 and not self.verbose:  # few, and up front
            self.out.print(f"warning: {message.record['message']}", highlight=False)
        path = self.current.record.dir / "logs" / "stage.log" if self.current else self.log_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as f:
            f.write(str(message))

    def install_logging(self) -> None:
        """loguru to the current log file (the stage's, else the build's); to the terminal too with -v."""
        logger.remove()
        logger.add(self._sink, level="DEBUG", format=LOG_FORMAT, colorize=False)
        if self.verbose:
            logger.add(sys.stderr, level="INFO", format=LOG_FORMAT)

    def task_settings(self) -> TaskSettings:
        """For the executor of the running stage (``executors.make_executor``)."""
        if self.current is None:
            return TaskSettings(None, None)
        self.current.ran = True
        log = None if self.verbose else str(self.current.record.dir / "logs" / "stage.log")
        return TaskSettings(log, str(self.current.progress_dir))

    # -- one stage
    @contextmanager
    def stage(self, name: str, stage_dir: Path, expected: int | None, fans_out: bool) -> Iterator[StageProgress]:
        """Shows the stage's line while it runs and its final counts after; the caller sets ``stats``."""
        log = stage_dir / "logs" / "stage.log"
        progress_dir = stage_dir / "logs" / "progress"
        progress_dir.mkdir(parents=True, exist_ok=True)
        for f in progress_dir.glob("*.json"):
            f.unlink()
        offset = log.stat().st_size if log.exists() else 0
        p = StageProgress(StageRecord(name, stage_dir), expected, fans_out, progress_dir)
        self.current = p
        stop = threading.Event()
        ticker = threading.Thread(target=self._tick, args=(p, stop), name="z1data-console", daemon=True)
        if self.out.is_terminal and not self.verbose:
            from rich.live import Live
            from rich.text import Text

            # No stdout/stderr redirect by Live: the tasks' stderr goes to the stage log (fd 2), not above the line.
            kw = {"refresh_per_second": 4, "transient": True, "redirect_stdout": False, "redirect_stderr": False}
            p.live = Live(Text(p.line()), console=self.out, **kw)
            p.live.start()
        ticker.start()
        try:
            yield p
        finally:
            stop.set()
            ticker.join()
            if p.live is not None:
                p.live.stop()
            self.current = None
            r = p.record
            r.seconds = time.monotonic() - p.started
            r.warnings = count_warnings(log, offset)
            if p.stats is not None:
                r.rows_in, r.kept, r.dropped = p.stats["rows_in"], p.stats["kept"], dict(p.stats["dropped"])
                r.cached = not p.ran
                self.stages.append(r)
                self.out.print(self._done_line(r), highlight=False)
            else:  # the error follows; its details are in the logs
                self.out.print(f"✗ {name} failed after {fmt_s(r.seconds)}  ·  log: {log}", highlight=False)

    def _tick(self, p: StageProgress, stop: threading.Event) -> None:
        from rich.text import Text

        last = time.monotonic()
        while not stop.wait(0.5):
            if p.live is not None:
                p.live.update(Text(p.line()))
            elif time.monotonic() - last >= PLAIN_EVERY_S:
                last = time.monotonic()
                self.out.print(p.line(), highlight=False)

    @staticmethod
    def _done_line(r: StageRecord) -> str:
        dropped = sum(r.dropped.values())
        rate = fmt_rate(r.rows_in / r.seconds) if r.seconds > 0 and not r.cached else "cached"
        warn = f"  ·  {r.warnings} warning(s)" if r.warnings else ""
        parts = [f"✓ {r.name:<12} in {r.rows_in}", f"kept {r.kept}", f"dropped {dropped}", rate, fmt_s(r.seconds)]
        return "  ·  ".join(parts) + warn

    def warnings(self) -> int:
        return sum(r.warnings for r in self.stages) + count_warnings(self.log_file, self.log_offset)

    def summary(self, version_dir: Path, rows: int, content_hash: str, state: str) -> None:
        """The closing table: per stage in, kept, dropped by reason, time; the total; where it went."""
        from rich import box
        from rich.table import Table

        if self.stages:
            t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
            for col in ("stage", "in", "kept", "dropped", "time"):
                t.add_column(col, justify="right" if col in ("in", "kept", "time") else "left")
            for r in self.stages:
                reasons = ", ".join(f"{k} {v}" for k, v in r.dropped.items()) or "-"
                t.add_row(r.name, str(r.rows_in), str(r.kept), reasons, "cached" if r.cached else fmt_s(r.seconds))
            first, last, dropped = self.stages[0], self.stages[-1], sum(sum(r.dropped.values()) for r in self.stages)
            t.add_row("total", str(first.rows_in), str(last.kept), str(dropped), fmt_s(time.monotonic() - self.started))
            self.out.print(t)
        self.out.print(f"{state} {version_dir}  rows {rows}  content hash {content_hash}", highlight=False)
        logs = f"{self.stages[0].dir.parent}/*/logs/stage.log" if self.stages else str(self.log_file)
        self.out.print(f"warnings: {self.warnings()}  ·  logs: {logs}", highlight=False)


def iter_progress(items: Iterable[T], total: int, label: str, out: Any) -> Iterator[T]:
    """``items`` with one progress line (done/total, rate, ETA) for commands outside a build (``verify``)."""
    from rich.text import Text

    started = last = time.monotonic()
    done = 0

    def line() -> str:
        elapsed = time.monotonic() - started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = f"  ·  ETA {fmt_s((total - done) / rate)}" if rate and done < total else ""
        return f"{label:<12} {done}/{total}  ·  {fmt_rate(rate, 'items')}{eta}  ·  {fmt_s(elapsed)}"

    live = None
    if out.is_terminal:
        from rich.live import Live

        live = Live(Text(line()), console=out, refresh_per_second=4, transient=True)
        live.start()
    try:
        for item in items:
            done += 1
            if live is not None:
                live.update(Text(line()))
            elif time.monotonic() - last >= PLAIN_EVERY_S:
                last = time.monotonic()
                out.print(line(), highlight=False)
            yield item
    finally:
        if live is not None:
            live.stop()
    out.print(f"✓ {line()}", highlight=False)


LIBRARY_LOGGERS = ("transformers", "datasets", "trl", "accelerate", "peft", "huggingface_hub", "vllm", "py.warnings")


def library_logs(log_file: Path) -> Path:
    """For train and eval: library loggers (transformers, datasets, vLLM, warnings) and loguru go to ``log_file``,
    so progress is not buried (``-v``: left as they are). Returns the log file, for the caller to name once."""
    import logging

    if verbose():
        return log_file
    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-8s | %(name)s - %(message)s"))
    logging.captureWarnings(True)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_default_handler()  # its own stderr handler, added on first use
    for name in LIBRARY_LOGGERS:
        lg = logging.getLogger(name)
        lg.handlers = [h for h in lg.handlers if not isinstance(h, logging.StreamHandler) or h.stream is not sys.stderr]
        lg.addHandler(handler)
        lg.propagate = False
    logger.remove()
    logger.add(log_file, level="DEBUG", format=LOG_FORMAT)
    return log_file


_CONSOLE: BuildConsole | None = None


@contextmanager
def build_console(log_file: Path, *, is_verbose: bool = False, out: Any = None) -> Iterator[BuildConsole]:
    """Install the console for the process's build (the CLI); logging is restored as it was afterwards."""
    global _CONSOLE
    c = BuildConsole(log_file, is_verbose=is_verbose, out=out)
    c.log_offset = log_file.stat().st_size if log_file.exists() else 0
    _CONSOLE = c
    c.install_logging()
    try:
        yield c
    finally:
        _CONSOLE = None
        logger.remove()
        logger.add(sys.stderr)


def task_settings() -> TaskSettings | None:
    """The running stage's task settings, or None outside a console (library use: nothing changes)."""
    return _CONSOLE.task_settings() if _CONSOLE is not None else None


@contextmanager
def stage(name: str, stage_dir: Path, expected: int | None, fans_out: bool = False) -> Iterator[StageProgress]:
    """``run.build_stages`` wraps each stage in this; without a console it only holds the stats."""
    if _CONSOLE is None:
        yield StageProgress(StageRecord(name, stage_dir), expected, fans_out, stage_dir / "logs" / "progress")
        return
    with _CONSOLE.stage(name, stage_dir, expected, fans_out) as p:
        yield p
