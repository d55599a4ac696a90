"""Exports and Hub publishing of a dataset version.

* ``export_z1``: Z1-Code-Reasoning-compatible columns (``id``, ``question``, ``response``,
  ``token_num_qwen``), so Z1's own training and selection scripts read it unchanged.
* ``export_messages``: a TRL ``messages`` view (user question, assistant response).
* ``push``: one Hub commit that adds every file of the version directory (shards, card, manifest, plots) and
  deletes every other file of the repo's head (``.gitattributes`` is kept), tagged with the version name, so
  ``load_dataset(repo, revision=VERSION)`` gets exactly that version. An existing tag is never moved silently.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from z1data.version import load_manifest

Z1_SCHEMA = pa.schema(
    [("id", pa.string()), ("question", pa.string()), ("response", pa.string()), ("token_num_qwen", pa.int64())]
)
MESSAGES_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
        ("bucket", pa.string()),
        ("num_tokens", pa.int32()),
    ]
)


def _rows(version_dir: Path, columns: list[str]) -> list[dict[str, Any]]:
    files = sorted((version_dir / "data").glob("*.parquet"))
    rows = [r for f in files for r in pq.read_table(f, columns=columns).to_pylist()]
    return sorted(rows, key=lambda r: r["id"])


def export_z1(version_dir: Path, out: Path) -> int:
    rows = _rows(version_dir, ["id", "question", "response", "num_tokens"])
    table = pa.Table.from_pylist(
        [
            {"id": r["id"], "question": r["question"], "response": r["response"], "token_num_qwen": r["num_tokens"]}
            for r in rows
        ],
        schema=Z1_SCHEMA,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return table.num_rows


def to_messages(question: str, response: str, system: str | None = None) -> list[dict[str, str]]:
    msgs = [{"role": "system", "content": system}] if system else []
    return [*msgs, {"role": "user", "content": question}, {"role": "assistant", "content": response}]


def export_messages(version_dir: Path, out: Path, system: str | None = None) -> int:
    rows = _rows(version_dir, ["id", "question", "response", "bucket", "num_tokens"])
    table = pa.Table.from_pylist(
        [
            {
                "id": r["id"],
                "messages": to_messages(r["question"], r["response"], system),
                "bucket": r["bucket"],
                "num_tokens": r["num_tokens"],
            }
            for r in rows
        ],
        schema=MESSAGES_SCHEMA,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, out)
    return table.num_rows


# --- Hub push ---------------------------------------------------------------------------------------------

MANIFEST = "manifest.json"
KEEP = frozenset({".gitattributes"})  # repo files a push never deletes: the Hub's LFS rules, nothing else
TOKEN_HELP = "pass --token, set $HF_TOKEN, or log in once with `hf auth login`"


class PushError(ValueError):
    """A push that must not go ahead (the CLI reports it as an error, exit 2)."""


class MissingTokenError(PushError):
    """No Hub token anywhere: found before any network call, so nothing is half-uploaded."""


class TagExistsError(PushError):
    """The version tag already names a commit with other content: moving it silently would rewrite history."""


@dataclass
class PushPlan:
    """What a push does to the repo: the adds and deletes of one commit, and what happens to the tag."""

    repo_id: str
    tag: str
    content_hash: str
    adds: list[tuple[str, int]]  # (path in repo, bytes): every file of the version
    deletes: list[str] | None  # head files the version lacks; None when the repo could not be read (dry run)
    kept: list[str] = field(default_factory=list)  # head files in KEEP, left as they are
    token_found: bool = False
    repo_exists: bool = False
    head: str | None = None  # the commit the new one builds on (also passed as parent_commit)
    tag_state: str = "new"  # new | same (same content hash) | different | unknown (repo unreadable)
    tag_hash: str | None = None  # content hash in the tagged commit's manifest.json
    remote_error: str | None = None
    outcome: str = "planned"  # planned | pushed | unchanged | moved
    commit: str | None = None

    def summary(self) -> str:
        """One line a person reads: what was (or would be) done."""
        where = f"{self.repo_id}@{self.tag}"
        if self.outcome == "unchanged":
            return f"{where} already holds content hash {self.content_hash[:16]}: nothing pushed (--force re-pushes)"
        if self.outcome in ("pushed", "moved"):
            n_del = len(self.deletes or [])
            moved = " (tag moved with --force)" if self.outcome == "moved" else ""
            return f"pushed {where}: commit {self.commit}, {len(self.adds)} files, {n_del} deleted{moved}"
        token = "found" if self.token_found else f"MISSING ({TOKEN_HELP})"
        tag = {
            "new": "new",
            "same": "already holds this content, so the push is a no-op",
            "different": f"holds other content ({(self.tag_hash or 'no manifest')[:16]}): refused without --force",
            "unknown": "unknown",
        }[self.tag_state]
        repo = "exists" if self.repo_exists else "new" if self.token_found else "not found (new, or private)"
        repo = f"unreadable ({self.remote_error})" if self.remote_error else repo
        dels = "?" if self.deletes is None else len(self.deletes)
        return f"dry run {where}: {len(self.adds)} adds, {dels} deletes; repo: {repo}; tag: {tag}; token: {token}"

    def rows(self) -> list[tuple[str, str, str]]:
        """(action, path, size) for every file the commit touches or keeps, adds first."""
        out = [("add", path, f"{size:,}") for path, size in self.adds]
        out += [("delete", path, "") for path in self.deletes or []]
        return out + [("keep", path, "") for path in self.kept]


def resolve_token(token: str | None) -> str | None:
    """An explicit token, else the saved login or ``$HF_TOKEN`` (``huggingface_hub.get_token``)."""
    if token:
        return token
    import huggingface_hub

    return huggingface_hub.get_token()


def hub_api(token: str | None) -> Any:
    """The network boundary (tests put a recording stand-in here)."""
    from huggingface_hub import HfApi

    return HfApi(token=token)


def version_files(version_dir: Path) -> list[tuple[str, int]]:
    """Every file of the version as (POSIX path relative to the directory, bytes), sorted."""
    files = (p for p in version_dir.rglob("*") if p.is_file())
    return sorted((p.relative_to(version_dir).as_posix(), p.stat().st_size) for p in files)


def _tagged_hash(api: Any, repo_id: str, commit: str) -> str | None:
    """The content hash in ``manifest.json`` at ``commit``; None when it has no (readable) manifest."""
    from huggingface_hub.errors import EntryNotFoundError

    try:
        path = api.hf_hub_download(repo_id, MANIFEST, repo_type="dataset", revision=commit)
        return json.loads(Path(path).read_text()).get("content_hash")
    except (EntryNotFoundError, json.JSONDecodeError):
        return None


def plan_push(version_dir: Path, repo_id: str, api: Any, *, token_found: bool, dry_run: bool = False) -> PushPlan:
    """Read the repo's head and tags and work out the one commit that makes the tag hold exactly the version.

    A dry run reports an unreadable repo (offline, private without a token, any network error) instead of
    raising: it must always show the adds; a real push raises.
    """
    from huggingface_hub.errors import RepositoryNotFoundError

    m = load_manifest(version_dir)
    plan = PushPlan(repo_id, m["version"], m["content_hash"], version_files(version_dir), [], token_found=token_found)
    try:
        _read_repo(plan, api)
    except RepositoryNotFoundError:
        pass  # a new repo: create_repo makes it with just .gitattributes
    except Exception as e:
        if not dry_run:
            raise
        plan.deletes, plan.kept, plan.tag_state = None, [], "unknown"
        plan.remote_error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    return plan


def _read_repo(plan: PushPlan, api: Any) -> None:
    """Fill in the head, the files to delete and keep, and the state of the version tag."""
    refs = api.list_repo_refs(plan.repo_id, repo_type="dataset")
    plan.repo_exists = True
    branches = {b.name: b.target_commit for b in refs.branches}
    plan.head = branches.get("main") or next(iter(branches.values()), None)
    files = api.list_repo_files(plan.repo_id, repo_type="dataset", revision=plan.head) if plan.head else []
    ours = {path for path, _ in plan.adds}
    plan.deletes = sorted(f for f in files if f not in ours and f not in KEEP)
    plan.kept = sorted(f for f in files if f in KEEP)
    tagged = {t.name: t.target_commit for t in refs.tags}.get(plan.tag)
    if tagged is not None:
        plan.tag_hash = _tagged_hash(api, plan.repo_id, tagged)
        plan.tag_state = "same" if plan.tag_hash == plan.content_hash else "different"


def push(
    version_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    api: Any = None,
    dry_run: bool = False,
    force: bool = False,
) -> PushPlan:
    """Make tag ``<version>`` of dataset repo ``repo_id`` hold exactly ``version_dir``, in one commit.

    The commit adds every file of the version and deletes every other file of the head (except ``KEEP``), so
    ``load_dataset(repo_id, revision=VERSION)`` and the card's ``data/*.parquet`` configs see this version
    only. An existing tag with the same content hash is a no-op; with other content it is refused unless
    ``force`` (then the tag moves to the new commit). ``api`` stands in for ``huggingface_hub.HfApi``.
    """
    token = resolve_token(token)
    if not token and not dry_run:
        raise MissingTokenError(f"no Hugging Face token found to push {repo_id}: {TOKEN_HELP}")
    api = api if api is not None else hub_api(token)
    plan = plan_push(Path(version_dir), repo_id, api, token_found=bool(token), dry_run=dry_run)
    if dry_run:
        return plan
    if plan.tag_state == "same" and not force:
        plan.outcome = "unchanged"
        return plan
    if plan.tag_state == "different" and not force:
        raise TagExistsError(
            f"{repo_id}@{plan.tag} already holds other content (content hash {(plan.tag_hash or 'none')[:16]}, "
            f"this version {plan.content_hash[:16]}): push under a new version name, or --force to move the tag"
        )
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    if not plan.repo_exists:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    vdir = Path(version_dir)
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=str(vdir / p)) for p, _ in plan.adds]
    operations += [CommitOperationDelete(path_in_repo=p, is_folder=False) for p in plan.deletes or []]
    m = load_manifest(vdir)
    commit = api.create_commit(
        repo_id,
        operations,
        commit_message=f"{m['recipe_name']} {plan.tag} ({plan.content_hash[:12]})",
        commit_description=f"{len(plan.adds)} files of version {plan.tag}; {len(plan.deletes or [])} deleted.",
        repo_type="dataset",
        parent_commit=plan.head,  # fails if someone pushed since we listed the head, instead of a mixed tree
    )
    plan.commit = commit.oid
    if plan.tag_state != "new":
        api.delete_tag(repo_id, tag=plan.tag, repo_type="dataset")
    api.create_tag(
        repo_id,
        tag=plan.tag,
        revision=plan.commit,
        repo_type="dataset",
        tag_message=f"content hash {plan.content_hash}",
    )
    plan.outcome = "moved" if plan.tag_state != "new" else "pushed"
    return plan
