"""Hub pushes: the commit tagged V holds exactly version V; tags are never moved silently; the card is portable.

``FakeHub`` stands in for ``huggingface_hub.HfApi`` at the network boundary only: it keeps an in-memory repo
(files per commit, branches, tags), applies the real ``CommitOperationAdd``/``CommitOperationDelete`` objects
that ``push`` builds, and records every call.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.errors import HfHubHTTPError, RemoteEntryNotFoundError, RepositoryNotFoundError
from huggingface_hub.hf_api import CommitInfo, GitRefInfo, GitRefs

import z1data.publish as publish
from z1data.card import write_card
from z1data.cli import main
from z1data.publish import MissingTokenError, TagExistsError, push

REPO_ID = "org/z1-data"
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"


def _http_error(cls: type[HfHubHTTPError], message: str, status: int) -> HfHubHTTPError:
    return cls(message, response=httpx.Response(status, request=httpx.Request("GET", "https://hub.test")))


class FakeHub:
    """An in-memory Hub dataset repo with the ``HfApi`` methods ``push`` uses; ``calls`` records them in order."""

    def __init__(self, download_dir: Path, repo_id: str = REPO_ID) -> None:
        self.download_dir, self.repo_id = download_dir, repo_id
        self.exists = False
        self.commits: dict[str, dict[str, bytes]] = {}
        self.main: str | None = None
        self.tags: dict[str, tuple[str, str | None]] = {}  # name -> (commit, message)
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def tree(self, revision: str) -> dict[str, bytes]:
        return self.commits[self._resolve(revision)]

    def _resolve(self, revision: str | None) -> str:
        if revision is None or revision == "main":
            assert self.main is not None
            return self.main
        if revision in self.tags:
            return self.tags[revision][0]
        if revision in self.commits:
            return revision
        raise AssertionError(f"unknown revision {revision}")

    def _commit(self, files: dict[str, bytes]) -> str:
        oid = hashlib.sha1(json.dumps(sorted((k, v.hex()) for k, v in files.items())).encode()).hexdigest()
        oid = hashlib.sha1(f"{oid}:{len(self.commits)}".encode()).hexdigest()
        self.commits[oid] = files
        self.main = oid
        return oid

    def _check(self, repo_id: str, repo_type: str | None) -> None:
        assert repo_id == self.repo_id and repo_type == "dataset"
        if not self.exists:
            raise _http_error(RepositoryNotFoundError, f"{repo_id} not found", 404)

    # --- HfApi surface -----------------------------------------------------------------------------------

    def create_repo(self, repo_id: str, *, repo_type: str | None = None, **kw: Any) -> None:
        self.calls.append(("create_repo", {"repo_id": repo_id, "repo_type": repo_type, **kw}))
        if not self.exists:  # the Hub starts every repo with one commit holding .gitattributes
            self.exists = True
            self._commit({".gitattributes": GITATTRIBUTES})

    def list_repo_refs(self, repo_id: str, *, repo_type: str | None = None) -> GitRefs:
        self.calls.append(("list_repo_refs", {"repo_id": repo_id}))
        self._check(repo_id, repo_type)
        assert self.main is not None
        return GitRefs(
            branches=[GitRefInfo(name="main", ref="refs/heads/main", target_commit=self.main)],
            converts=[],
            tags=[GitRefInfo(name=n, ref=f"refs/tags/{n}", target_commit=c) for n, (c, _) in self.tags.items()],
        )

    def list_repo_files(self, repo_id: str, *, revision: str | None = None, repo_type: str | None = None) -> list[str]:
        self.calls.append(("list_repo_files", {"repo_id": repo_id, "revision": revision}))
        self._check(repo_id, repo_type)
        return sorted(self.tree(self._resolve(revision)))

    def hf_hub_download(self, repo_id: str, filename: str, *, repo_type: str | None = None, revision: str) -> str:
        self.calls.append(("hf_hub_download", {"repo_id": repo_id, "filename": filename, "revision": revision}))
        self._check(repo_id, repo_type)
        tree = self.tree(revision)
        if filename not in tree:
            raise _http_error(RemoteEntryNotFoundError, f"{filename} not in {revision}", 404)
        out = self.download_dir / self._resolve(revision) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(tree[filename])
        return str(out)

    def create_commit(
        self,
        repo_id: str,
        operations: list[Any],
        *,
        commit_message: str,
        repo_type: str | None = None,
        parent_commit: str | None = None,
        **kw: Any,
    ) -> CommitInfo:
        self.calls.append(("create_commit", {"operations": list(operations), "parent_commit": parent_commit, **kw}))
        self._check(repo_id, repo_type)
        if parent_commit is not None and parent_commit != self.main:
            raise _http_error(HfHubHTTPError, "parent commit is not the head", 412)
        files = dict(self.tree("main"))
        for op in operations:
            if isinstance(op, CommitOperationAdd):
                files[op.path_in_repo] = Path(op.path_or_fileobj).read_bytes()
            elif isinstance(op, CommitOperationDelete):
                assert op.path_in_repo in files and not op.is_folder, op
                del files[op.path_in_repo]
            else:
                raise AssertionError(f"unexpected operation {op!r}")
        oid = self._commit(files)
        url = f"https://huggingface.co/datasets/{repo_id}/commit/{oid}"
        return CommitInfo(commit_url=url, commit_message=commit_message, commit_description="", oid=oid)

    def create_tag(
        self, repo_id: str, *, tag: str, revision: str | None = None, repo_type: str | None = None, **kw: Any
    ) -> None:
        self.calls.append(("create_tag", {"tag": tag, "revision": revision, **kw}))
        self._check(repo_id, repo_type)
        if tag in self.tags:
            raise _http_error(HfHubHTTPError, f"tag {tag} already exists", 409)
        self.tags[tag] = (self._resolve(revision), kw.get("tag_message"))

    def delete_tag(self, repo_id: str, *, tag: str, repo_type: str | None = None) -> None:
        self.calls.append(("delete_tag", {"tag": tag}))
        self._check(repo_id, repo_type)
        del self.tags[tag]


def make_version(root: Path, version: str, files: dict[str, bytes], content_hash: str) -> Path:
    """A small version directory: the shards given, a card, and the manifest keys ``push`` reads."""
    vdir = root / version
    for rel, data in files.items():
        (vdir / rel).parent.mkdir(parents=True, exist_ok=True)
        (vdir / rel).write_bytes(data)
    (vdir / "README.md").write_text(f"# demo / {version}\n")
    manifest = {"recipe_name": "demo", "version": version, "content_hash": content_hash, "version_dir": str(vdir)}
    (vdir / "manifest.json").write_text(json.dumps(manifest))
    return vdir


def local_tree(vdir: Path) -> dict[str, bytes]:
    return {p.relative_to(vdir).as_posix(): p.read_bytes() for p in vdir.rglob("*") if p.is_file()}


@pytest.fixture
def hub(tmp_path: Path) -> FakeHub:
    return FakeHub(tmp_path / "downloads")


@pytest.fixture
def versions(tmp_path: Path) -> dict[str, Path]:
    v1 = {"data/short-verified-00000.parquet": b"v1-a", "data/long-verified-00001.parquet": b"v1-b"}
    v2 = {"data/short-verified-00000.parquet": b"v2-a", "data/short-unverified-00002.parquet": b"v2-c"}
    return {
        "v1": make_version(tmp_path / "one", "v1", {**v1, "funnel.png": b"png1"}, "a" * 64),
        "v2": make_version(tmp_path / "two", "v2", v2, "b" * 64),
        "v2-other": make_version(tmp_path / "other", "v2", {"data/long-verified-00000.parquet": b"x"}, "c" * 64),
    }


@pytest.fixture
def no_saved_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)


def test_v2_over_v1_deletes_v1_only_files_and_tags_exactly_v2(hub: FakeHub, versions: dict[str, Path]) -> None:
    first = push(versions["v1"], REPO_ID, token="hf_test", api=hub)
    assert first.outcome == "pushed" and hub.names()[:2] == ["list_repo_refs", "create_repo"]
    assert set(hub.tree("v1")) - {".gitattributes"} == set(local_tree(versions["v1"]))
    head_before = hub.main
    hub.calls.clear()

    second = push(versions["v2"], REPO_ID, token="hf_test", api=hub)
    assert hub.names() == ["list_repo_refs", "list_repo_files", "create_commit", "create_tag"]  # one commit
    commit = dict(hub.calls)["create_commit"]
    ops = commit["operations"]
    adds = {op.path_in_repo for op in ops if isinstance(op, CommitOperationAdd)}
    deletes = {op.path_in_repo for op in ops if isinstance(op, CommitOperationDelete)}
    assert adds == set(local_tree(versions["v2"]))
    assert deletes == {"data/long-verified-00001.parquet", "funnel.png"}  # v1-only; .gitattributes kept
    assert commit["parent_commit"] == head_before
    assert dict(hub.calls)["create_tag"] == {
        "tag": "v2",
        "revision": second.commit,
        "tag_message": f"content hash {'b' * 64}",
    }
    tagged = hub.tree("v2")
    assert tagged.pop(".gitattributes") == GITATTRIBUTES
    assert tagged == local_tree(versions["v2"])  # byte for byte, nothing of v1
    assert hub.tree("v1") != hub.tree("v2") and hub.tree("v1")["funnel.png"] == b"png1"  # v1's tag is untouched
    assert second.summary().startswith(f"pushed {REPO_ID}@v2") and "2 deleted" in second.summary()


def test_repush_same_content_is_a_noop(
    hub: FakeHub, versions: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    push(versions["v2"], REPO_ID, token="hf_test", api=hub)
    commits, hub.calls = len(hub.commits), []
    again = push(versions["v2"], REPO_ID, token="hf_test", api=hub)
    assert again.outcome == "unchanged" and "already" in again.summary()
    assert "create_commit" not in hub.names() and "create_tag" not in hub.names() and len(hub.commits) == commits

    monkeypatch.setattr(publish, "hub_api", lambda token: hub)
    assert main(["push", str(versions["v2"]), "--repo", REPO_ID, "--token", "hf_test"]) == 0
    assert "already holds content hash" in capsys.readouterr().out and len(hub.commits) == commits

    again = push(versions["v2"], REPO_ID, token="hf_test", api=hub, force=True)  # --force re-pushes (a new card)
    assert again.outcome == "moved" and hub.names()[-3:] == ["create_commit", "delete_tag", "create_tag"]


def test_other_content_under_existing_tag_is_refused_then_force_moves_it(
    hub: FakeHub, versions: dict[str, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    push(versions["v2"], REPO_ID, token="hf_test", api=hub)
    old_commit, hub.calls = hub.tags["v2"][0], []
    with pytest.raises(TagExistsError, match="--force"):
        push(versions["v2-other"], REPO_ID, token="hf_test", api=hub)
    assert "create_commit" not in hub.names() and hub.tags["v2"][0] == old_commit

    monkeypatch.setattr(publish, "hub_api", lambda token: hub)
    assert main(["push", str(versions["v2-other"]), "--repo", REPO_ID, "--token", "hf_test"]) == 2
    assert "already holds other content" in capsys.readouterr().out

    hub.calls.clear()
    moved = push(versions["v2-other"], REPO_ID, token="hf_test", api=hub, force=True)
    assert hub.names()[-3:] == ["create_commit", "delete_tag", "create_tag"] and moved.outcome == "moved"
    assert hub.tags["v2"] == (moved.commit, f"content hash {'c' * 64}") and moved.commit != old_commit
    tagged = hub.tree("v2")
    del tagged[".gitattributes"]
    assert tagged == local_tree(versions["v2-other"])


def test_missing_token_fails_before_any_api_call(
    hub: FakeHub,
    versions: dict[str, Path],
    no_saved_token: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(MissingTokenError, match=r"--token.*HF_TOKEN.*hf auth login"):
        push(versions["v1"], REPO_ID, api=hub)
    assert hub.calls == []

    made: list[str | None] = []
    monkeypatch.setattr(publish, "hub_api", lambda token: made.append(token) or hub)
    assert main(["push", str(versions["v1"]), "--repo", REPO_ID]) == 2
    assert "no Hugging Face token" in capsys.readouterr().out and made == [] and hub.calls == []

    monkeypatch.setenv("HF_TOKEN", "hf_from_env")  # the CLI reads --token-env (default HF_TOKEN)
    assert main(["push", str(versions["v1"]), "--repo", REPO_ID]) == 0 and made == ["hf_from_env"]


def test_dry_run_lists_every_add_and_delete_and_the_token(
    hub: FakeHub,
    versions: dict[str, Path],
    no_saved_token: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    push(versions["v1"], REPO_ID, token="hf_test", api=hub)
    commits, hub.calls = len(hub.commits), []
    monkeypatch.setattr(publish, "hub_api", lambda token: hub)
    assert main(["push", str(versions["v2"]), "--repo", REPO_ID, "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    for path in local_tree(versions["v2"]):
        assert any("add" in line and path in line for line in lines), path
    for path in ("data/long-verified-00001.parquet", "funnel.png"):
        assert any("delete" in line and path in line for line in lines), path
    assert any("keep" in line and ".gitattributes" in line for line in lines)
    assert "token: MISSING" in out and "hf auth login" in out and "tag: new" in out
    assert len(hub.commits) == commits and not {"create_commit", "create_tag", "create_repo"} & set(hub.names())

    assert main(["push", str(versions["v1"]), "--repo", REPO_ID, "--dry-run", "--token", "hf_x"]) == 0
    out = capsys.readouterr().out
    assert "token: found" in out and "the push is a no-op" in out


def test_dry_run_reports_an_unreadable_repo(
    versions: dict[str, Path],
    no_saved_token: None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Offline:
        def list_repo_refs(self, repo_id: str, **kw: Any) -> None:
            raise ConnectionError("offline mode is enabled")

    plan = push(versions["v2"], REPO_ID, api=Offline(), dry_run=True)
    assert plan.deletes is None and plan.tag_state == "unknown" and "offline" in plan.summary()
    assert [a for a, _, _ in plan.rows()] == ["add"] * len(local_tree(versions["v2"]))
    with pytest.raises(MissingTokenError):
        push(versions["v2"], REPO_ID, api=Offline())
    with pytest.raises(ConnectionError):
        push(versions["v2"], REPO_ID, api=Offline(), token="hf_test")
    monkeypatch.setattr(publish, "hub_api", lambda token: Offline())
    assert main(["push", str(versions["v2"]), "--repo", REPO_ID, "--token", "hf_test"]) == 2
    assert "failed: ConnectionError: offline" in capsys.readouterr().out


def test_new_repo_is_created_and_gets_exactly_the_version(hub: FakeHub, versions: dict[str, Path]) -> None:
    plan = push(versions["v2"], REPO_ID, token="hf_test", api=hub, dry_run=True)
    assert not plan.repo_exists and plan.deletes == [] and hub.names() == ["list_repo_refs"]
    push(versions["v2"], REPO_ID, token="hf_test", api=hub, private=True)
    assert dict(hub.calls)["create_repo"]["private"] is True
    assert set(hub.tree("v2")) == {".gitattributes", *local_tree(versions["v2"])}


def _card_manifest(version: str, version_dir: Path) -> dict[str, Any]:
    teacher = {"name": "canonical", "backend": "replay", "replay": {"kind": "humaneval_canonical"}}
    return {
        "recipe_name": "demo",
        "version": version,
        "version_dir": str(version_dir),
        "recipe_hash": "d" * 64,
        "content_hash": "e" * 64,
        "rows": 2,
        "buckets": {"short": 1, "long": 1},
        "verified": 1,
        "funnel": [{"stage": "source", "in": 2, "kept": 2, "dropped": {}}],
        "recipe": {
            "description": "demo",
            "generate": {"teachers": [teacher]},
            "bucket": {"tokenizer": "tiny:qwen2", "short_max_tokens": 160},
        },
    }


def test_card_uses_hub_relative_paths_and_is_the_same_wherever_the_version_lives(tmp_path: Path) -> None:
    cards = []
    for where in ("a/deep/place", "elsewhere"):
        out = tmp_path / where / "v2"
        (out / "data").mkdir(parents=True)
        (out / "data" / "short-verified-00000.parquet").write_bytes(b"x")
        write_card(out, _card_manifest("v2", out))
        cards.append((out / "README.md").read_text())
    assert cards[0] == cards[1]  # deterministic and independent of the local directory
    assert str(tmp_path) not in cards[0]
    assert 'load_dataset("ORG/NAME", revision="v2", split="train")' in cards[0]
    assert 'data_files="data/short-*.parquet", revision="v2"' in cards[0]
