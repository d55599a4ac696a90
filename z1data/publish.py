"""Exports and Hub publishing of a dataset version.

* ``export_z1``: Z1-Code-Reasoning-compatible columns (``id``, ``question``, ``response``,
  ``token_num_qwen``), so Z1's own training and selection scripts read it unchanged.
* ``export_messages``: a TRL ``messages`` view (user question, assistant response).
* ``push``: upload the version directory (shards, card, manifest, plots) to a Hub dataset repo and tag
  the commit with the version name, so ``load_dataset(repo, revision=VERSION)`` gets exactly it.
"""

from __future__ import annotations

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


def push(
    version_dir: Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    api: Any = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Upload ``version_dir`` to ``repo_id`` (a dataset repo) and tag it ``<version>``.

    ``api`` is an ``huggingface_hub.HfApi`` (or a compatible object); ``dry_run`` returns the plan only.
    """
    m = load_manifest(version_dir)
    files = sorted(str(p.relative_to(version_dir)) for p in version_dir.rglob("*") if p.is_file())
    plan = {
        "repo_id": repo_id,
        "repo_type": "dataset",
        "tag": m["version"],
        "files": files,
        "content_hash": m["content_hash"],
    }
    if dry_run:
        return plan
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    commit = api.upload_folder(
        folder_path=str(version_dir),
        repo_id=repo_id,
        repo_type="dataset",
        commit_message=f"{m['recipe_name']} {m['version']} ({m['content_hash'][:12]})",
    )
    oid = getattr(commit, "oid", None)
    api.create_tag(
        repo_id, tag=m["version"], revision=oid, repo_type="dataset", tag_message=f"content hash {m['content_hash']}"
    )
    return plan | {"commit": oid}
