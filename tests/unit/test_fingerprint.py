"""Input identities: a local model by its content (digest cache trusted only outside a fresh session), a Hub
name by the commit it resolves to (HF cache offline, the Hub online), and a clear error when neither answers."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import pytest

import z1data.digests as digests
from z1data.digests import HubRevisionError, dir_digests, file_digest, input_session
from z1data.fingerprint import inputs_fingerprint, model_fingerprint

OLD_NS = 1_600_000_000 * 10**9  # a mtime far in the past: not "racily clean", so digests are persisted
SHA_A, SHA_B = "a" * 40, "b" * 40


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("Z1DATA_CACHE", str(tmp_path / "z1cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every file the digest layer actually reads."""
    seen: list[str] = []
    real = digests.file_sha256

    def counting(path: Path) -> str:
        seen.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(digests, "file_sha256", counting)
    return seen


def write(path: Path, data: bytes, mtime_ns: int = OLD_NS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def rewrite_in_place(path: Path, data: bytes) -> None:
    """New bytes, same size, same inode, and the old mtime put back."""
    st = path.stat()
    assert len(data) == st.st_size
    with path.open("r+b") as f:
        f.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_mtime_ns == st.st_mtime_ns and path.stat().st_size == st.st_size


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ckpt"
    write(d / "config.json", b'{"hidden_size": 8}')
    write(d / "model.safetensors", b"\x01" * 64)
    write(d / "tokenizer" / "tokenizer.json", b"{}")
    write(d / ".git" / "objects" / "pack", b"packed copy")
    return d


# ---------------------------------------------------------------- local directories
def test_local_dir_is_keyed_by_every_file_recursively(model_dir: Path, tmp_path: Path) -> None:
    fp = model_fingerprint(str(model_dir))
    assert set(fp["files"]) == {"config.json", "model.safetensors", "tokenizer/tokenizer.json"}  # .git skipped
    assert fp["files"]["model.safetensors"] == hashlib.sha256(b"\x01" * 64).hexdigest()
    moved = model_dir.rename(tmp_path / "moved")
    assert model_fingerprint(str(moved)) == fp  # content, not location


def test_same_size_same_mtime_rewrite_is_caught_by_a_fresh_session(model_dir: Path, reads: list[str]) -> None:
    before = model_fingerprint(str(model_dir))
    rewrite_in_place(model_dir / "model.safetensors", b"\x02" * 64)
    reads.clear()
    assert model_fingerprint(str(model_dir)) == before  # trusted cache: a re-run of the same VERSION is cheap
    assert reads == []
    with input_session(fresh=True):  # a new version: nothing trusted
        fresh = model_fingerprint(str(model_dir))
        assert model_fingerprint(str(model_dir)) == fresh  # read once per session
    assert fresh != before and fresh["files"]["model.safetensors"] == hashlib.sha256(b"\x02" * 64).hexdigest()
    assert sorted(reads) == ["config.json", "model.safetensors", "tokenizer.json"]
    assert model_fingerprint(str(model_dir)) == fresh  # the cache was refreshed


def test_changed_mtime_is_always_caught(model_dir: Path) -> None:
    before = model_fingerprint(str(model_dir))
    write(model_dir / "model.safetensors", b"\x03" * 64, mtime_ns=OLD_NS + 1)
    assert model_fingerprint(str(model_dir)) != before
    write(model_dir / "extra.bin", b"x")
    assert "extra.bin" in model_fingerprint(str(model_dir))["files"]


def test_digest_cache_avoids_rereading(model_dir: Path, reads: list[str]) -> None:
    w = model_dir / "model.safetensors"
    first = file_digest(w)
    assert file_digest(w) == first and file_digest(w) == first
    assert reads == ["model.safetensors"]
    entries = list((Path(os.environ["Z1DATA_CACHE"]) / "digests").rglob("*.json"))
    assert len(entries) == 1 and first in entries[0].read_text()
    with input_session():  # a trusting session uses the cache too
        assert file_digest(w) == first
    assert reads == ["model.safetensors"]


def test_recently_modified_file_is_not_cached(tmp_path: Path, reads: list[str]) -> None:
    """Racily clean (git's term): a file written this very moment may change again within the mtime tick."""
    f = tmp_path / "data.jsonl"
    f.write_text("{}\n")
    file_digest(f)
    file_digest(f)
    assert reads == ["data.jsonl", "data.jsonl"]


def test_input_data_files_use_the_digest_cache(tmp_path: Path, reads: list[str]) -> None:
    write(tmp_path / "in" / "a.jsonl", b'{"id": 1}\n')
    fp = inputs_fingerprint("jsonl", str(tmp_path / "in" / "a.jsonl"))
    assert fp == {str(tmp_path / "in" / "a.jsonl"): hashlib.sha256(b'{"id": 1}\n').hexdigest()}
    assert inputs_fingerprint("jsonl", str(tmp_path / "in" / "a.jsonl")) == fp
    assert reads == ["a.jsonl"]


def test_dangling_symlink_is_listed_not_dropped(tmp_path: Path) -> None:
    d = tmp_path / "m"
    write(d / "config.json", b"{}")
    (d / "weights.bin").symlink_to(tmp_path / "gone.bin")
    assert dir_digests(d)["weights.bin"] == f"missing -> {tmp_path / 'gone.bin'}"


def test_tiny_model_fingerprint_is_its_config_digest() -> None:
    fp = model_fingerprint("tiny:qwen2")
    assert set(fp) == {"tiny", "config"}  # no build, no file read: the quickstart's fingerprints stay put


# ---------------------------------------------------------------- Hub names
def fake_hub(tmp_path: Path, repo: str, sha: str, *, revision: str = "main", kind: str = "models") -> Path:
    """The HF cache's layout: ``<kind>--org--name/refs/<revision>`` holding the commit, and its snapshot."""
    root = tmp_path / "hub" / f"{kind}--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / revision).write_text(sha)
    (root / "snapshots" / sha).mkdir(parents=True, exist_ok=True)
    return root


def test_hub_model_resolves_offline_from_the_cache(tmp_path: Path) -> None:
    root = fake_hub(tmp_path, "org/name", SHA_A)
    fp = model_fingerprint("org/name")
    assert fp == {"hub": "org/name", "revision": None, "commit": SHA_A}
    (root / "refs" / "main").write_text(SHA_B)  # the Hub moved main and the cache followed
    assert model_fingerprint("org/name")["commit"] == SHA_B


def test_hub_branch_and_explicit_commit(tmp_path: Path) -> None:
    fake_hub(tmp_path, "org/name", SHA_B, revision="dev")
    assert model_fingerprint("org/name", "dev")["commit"] == SHA_B
    assert model_fingerprint("other/model", SHA_A)["commit"] == SHA_A  # a commit needs no lookup, no cache


def test_hub_dataset_resolves_to_its_commit(tmp_path: Path) -> None:
    root = fake_hub(tmp_path, "org/data", SHA_A, kind="datasets")
    assert inputs_fingerprint("hf", "org/data") == {"hub": "org/data", "commit": SHA_A}
    (root / "refs" / "main").write_text(SHA_B)
    assert inputs_fingerprint("hf", "org/data")["commit"] == SHA_B


def test_unresolvable_hub_names_offline_raise_a_clear_error() -> None:
    with pytest.raises(HubRevisionError) as e:
        model_fingerprint("org/missing")
    msg = str(e.value)
    assert "'org/missing'" in msg and "HF_HUB_OFFLINE" in msg and "generate.teachers[].revision" in msg
    assert "bucket.tokenizer" in msg
    with pytest.raises(HubRevisionError, match=r"'org/nodata'.*sources\[\]\.path"):
        inputs_fingerprint("hf", "org/nodata")


class _Info:
    def __init__(self, sha: str):
        self.sha = sha


def _online(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)


def test_online_the_hub_answers_once_per_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    _online(monkeypatch)
    fake_hub(tmp_path, "org/name", SHA_A)  # a stale cache: the Hub is the authority when reachable
    asked: list[tuple[str, Any]] = []

    def model_info(self: Any, name: str, revision: str | None = None, **kw: Any) -> _Info:
        asked.append((name, revision))
        return _Info(SHA_B)

    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    with input_session():
        assert model_fingerprint("org/name")["commit"] == SHA_B
        assert model_fingerprint("org/name")["commit"] == SHA_B
    assert asked == [("org/name", "main")]


def test_online_failure_falls_back_to_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    _online(monkeypatch)

    def unreachable(self: Any, *a: Any, **kw: Any) -> _Info:
        raise ConnectionError("no route to host")

    monkeypatch.setattr(huggingface_hub.HfApi, "dataset_info", unreachable)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", unreachable)
    fake_hub(tmp_path, "org/data", SHA_A, kind="datasets")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert inputs_fingerprint("hf", "org/data")["commit"] == SHA_A
    assert any("no route to host" in str(w.message) for w in caught)
    with pytest.raises(HubRevisionError, match="no route to host"):
        model_fingerprint("org/name")


def test_an_empty_z1data_cache_means_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """``Z1DATA_CACHE=`` (empty, e.g. from a shell script's ``export Z1DATA_CACHE=$X`` with X unset) must not
    put models and digests under the current directory."""
    from z1data.digests import cache_root

    monkeypatch.setenv("Z1DATA_CACHE", "")
    assert cache_root() == Path.home() / ".cache" / "z1data"
    monkeypatch.setenv("Z1DATA_CACHE", "/tmp/elsewhere")
    assert cache_root() == Path("/tmp/elsewhere")
