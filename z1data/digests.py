"""What a local input's bytes are and which commit a Hub name points at: the identities fingerprints hash.

Why a module of its own: a fingerprint must change when an input changes, and for the two kinds of input
that means two different lookups. Local files (model weights, tokenizers, input data) are known by their
SHA-256; re-reading a 15 GB checkpoint on every ``z1data build`` is too slow, so digests persist under
``$Z1DATA_CACHE/digests/`` keyed by (absolute path, size, mtime_ns). That key misses a rewrite that keeps
size and mtime, so a build that writes a new version runs inside ``input_session(fresh=True)``, which
re-reads every file and refreshes the cache. Hub names (models, tokenizers, datasets) are known by the
commit their revision resolves to: asked of the Hub, or read from the local HF cache offline, never keyed
by name alone.

Bottom layer: stdlib, ``huggingface_hub`` and ``z1data.hashing`` only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from z1data.hashing import file_sha256

COMMIT_RE = re.compile(r"[0-9a-f]{40}")
#: Directories left out of a directory's digest: VCS metadata (``git clone`` of a model repo keeps a second,
#: packed copy of every file there, and it changes on fetch); the working-tree files are what is loaded.
SKIPPED_DIRS = frozenset({".git"})
#: A file modified this recently may still change within the same mtime tick ("racily clean", as git
#: says): its digest is used but never persisted.
RACY_NS = 2_000_000_000

FileKey = tuple[str, int, int]  # (absolute path, size, mtime_ns)


class HubRevisionError(ValueError):
    """A Hub model or dataset whose revision cannot be resolved to a commit (offline and not cached).

    ``hub_reason`` says why the Hub did not answer (offline, or the lookup's error), for callers that word
    their own message (preflight) without parsing this one."""

    def __init__(self, message: str, hub_reason: str = ""):
        super().__init__(message)
        self.hub_reason = hub_reason


@dataclass
class _Session:
    """One build's view of its inputs: each file read and each Hub name resolved at most once."""

    fresh: bool
    files: dict[FileKey, str] = field(default_factory=dict)
    hub: dict[tuple[str, str, str], str] = field(default_factory=dict)


_SESSION: ContextVar[_Session | None] = ContextVar("z1data_input_session", default=None)


@contextmanager
def input_session(*, fresh: bool = False) -> Iterator[None]:
    """Fingerprint inputs consistently for one build (its plans agree even if the Hub moves meanwhile).

    ``fresh``: do not trust the persistent digest cache; every local file is re-read once in this session
    and its cache entry refreshed, so a rewrite that kept size and mtime is caught.
    """
    token = _SESSION.set(_Session(fresh))
    try:
        yield
    finally:
        _SESSION.reset(token)


# ---------------------------------------------------------------- local files
def cache_root() -> Path:
    """``$Z1DATA_CACHE`` (default ``~/.cache/z1data``): models, tokenizers and digests all live under it."""
    return Path(os.environ.get("Z1DATA_CACHE") or Path.home() / ".cache" / "z1data")  # empty: the default


def _entry_path(abs_path: str) -> Path:
    h = hashlib.sha256(abs_path.encode()).hexdigest()
    return cache_root() / "digests" / h[:2] / f"{h}.json"


def _cached(key: FileKey) -> str | None:
    try:
        e = json.loads(_entry_path(key[0]).read_text())
    except (OSError, ValueError):
        return None
    if [e.get("path"), e.get("size"), e.get("mtime_ns")] == list(key) and isinstance(e.get("sha256"), str):
        return e["sha256"]
    return None


def _store(key: FileKey, sha: str | None) -> None:
    """Write (or, with ``sha=None``, drop) a cache entry; a cache that cannot be written only costs re-reads."""
    path = _entry_path(key[0])
    try:
        if sha is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"path": key[0], "size": key[1], "mtime_ns": key[2], "sha256": sha}))
        os.replace(tmp, path)
    except OSError:
        pass


def _key(path: Path) -> FileKey:
    real = Path(path).resolve()  # symlinks (HF snapshots point into blobs/) are keyed by their target
    st = real.stat()
    return str(real), st.st_size, st.st_mtime_ns


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, through the session and the persistent cache (see the module docstring)."""
    key = _key(path)
    session = _SESSION.get()
    if session is not None and key in session.files:
        return session.files[key]
    sha = None if session is not None and session.fresh else _cached(key)
    if sha is None:
        sha = file_sha256(Path(key[0]))
        stable = _key(path) == key and time.time_ns() - key[2] >= RACY_NS
        _store(key, sha if stable else None)
    if session is not None:
        session.files[key] = sha
    return sha


def dir_digests(root: Path) -> dict[str, str]:
    """Every file under ``root`` (recursively, symlinks followed) by its relative POSIX path -> SHA-256.

    Only ``SKIPPED_DIRS`` (``.git``) are left out. A dangling symlink is listed as ``missing -> <target>``
    rather than dropped, and a directory reached twice through symlinks is read once.
    """
    out: dict[str, str] = {}
    seen: set[Path] = set()
    for d, dirs, files in os.walk(root, followlinks=True):
        real = Path(d).resolve()
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(x for x in dirs if x not in SKIPPED_DIRS)
        for name in sorted(files):
            f = Path(d) / name
            rel = f.relative_to(root).as_posix()
            out[rel] = file_digest(f) if f.exists() else f"missing -> {os.readlink(f)}"
    return dict(sorted(out.items()))


# ---------------------------------------------------------------- Hub names
def _env_true(name: str) -> bool:
    return os.environ.get(name, "").upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``), read now as well as at huggingface_hub's import."""
    from huggingface_hub import constants

    return _env_true("HF_HUB_OFFLINE") or _env_true("TRANSFORMERS_OFFLINE") or constants.HF_HUB_OFFLINE


def hub_cache_dir() -> Path:
    """The HF Hub cache as huggingface_hub finds it, but read from the environment now (tests set it late)."""
    from huggingface_hub import constants

    env = os.environ
    if v := env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.path.expandvars(os.path.expanduser(v)))
    if v := env.get("HF_HOME"):
        return Path(os.path.expandvars(os.path.expanduser(v))) / "hub"
    return Path(constants.HF_HUB_CACHE)


def cached_commit(name: str, revision: str, repo_type: str = "model") -> str | None:
    """The commit ``refs/<revision>`` names in the local HF cache (what an offline load would use)."""
    from huggingface_hub.file_download import repo_folder_name

    ref = hub_cache_dir() / repo_folder_name(repo_id=name, repo_type=repo_type) / "refs" / revision
    try:
        sha = ref.read_text().strip()
    except OSError:
        return None
    return sha if COMMIT_RE.fullmatch(sha) else None


def _ask_hub(name: str, revision: str, repo_type: str) -> str:
    from huggingface_hub import HfApi

    api = HfApi()
    info = (
        api.dataset_info(name, revision=revision) if repo_type == "dataset" else api.model_info(name, revision=revision)
    )
    if not info.sha:
        raise HubRevisionError(f"the Hub returned no commit for {repo_type} '{name}' at '{revision}'")
    return info.sha


def hub_commit(name: str, revision: str | None = None, repo_type: str = "model") -> str:
    """The commit a Hub name's revision (default ``main``) points at: a 40-hex revision as is; else the Hub
    (unless offline; on a network failure the cache answers, with a warning); else the local HF cache."""
    rev = revision or "main"
    if COMMIT_RE.fullmatch(rev):
        return rev
    session = _SESSION.get()
    if session is not None and (repo_type, name, rev) in session.hub:
        return session.hub[(repo_type, name, rev)]
    hub_error = "HF_HUB_OFFLINE is set"
    sha: str | None = None
    if not hub_offline():
        try:
            sha = _ask_hub(name, rev, repo_type)
        except Exception as e:  # unreachable Hub, missing repo, gated: the cache may answer
            hub_error = f"the Hub lookup failed ({type(e).__name__}: {e})"
    if sha is None:
        sha = cached_commit(name, rev, repo_type)
        if sha is None:
            why = f"{hub_error} and it is not in the HF cache ({hub_cache_dir()})"
            raise HubRevisionError(_unresolved_message(name, rev, repo_type, why), hub_reason=hub_error)
        if not hub_offline():
            warnings.warn(f"{repo_type} '{name}': {hub_error}; using the HF cache's '{rev}' = {sha}", stacklevel=2)
    if session is not None:
        session.hub[(repo_type, name, rev)] = sha
    return sha


def _unresolved_message(name: str, rev: str, repo_type: str, why: str) -> str:
    if repo_type == "dataset":
        fix = (
            f"download it once online (`hf download --repo-type dataset {name}`), or point the recipe key that "
            "names it (`sources[].path`, `generate.teachers[].replay.path` or `decontaminate.benchmarks[].path`) "
            "at a local copy"
        )
    else:
        fix = (
            f"download it once online (`hf download {name}`), set the teacher's `revision:` "
            "(`generate.teachers[].revision`) to a 40-hex commit sha, or point the recipe key that names it "
            "(`generate.teachers[].model` or `bucket.tokenizer`) at a local directory"
        )
    return (
        f"cannot pin Hub {repo_type} '{name}' (revision '{rev}') to a commit: {why}. Fingerprints need the "
        f"commit, not the name, to notice a Hub update. Fix: {fix}."
    )
