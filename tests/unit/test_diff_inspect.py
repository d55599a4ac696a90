"""``z1data diff`` shows question snippets and changed fields and fits 80 columns; ``inspect`` shows statuses."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from z1data.cli import status_table
from z1data.diff import diff_versions, render, snippet

LONG_Q = "Write a function that returns the sum of all even Fibonacci numbers below a given limit, efficiently."


def _row(i: str, question: str, response: str = "r", status: str = "passed", bucket: str = "short") -> dict:
    return {"id": i, "question": question, "response": response, "status": status, "bucket": bucket, "num_tokens": 10}


def _version(path: Path, rows: list[dict], short_max: int) -> Path:
    (path / "data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), path / "data" / "short-verified-00000.parquet")
    funnel = [{"stage": "source", "in": len(rows), "kept": len(rows), "dropped": {"bad_row": 1, "timeout_xyz": 2}}]
    manifest = {"content_hash": str(hash(json.dumps(rows))), "funnel": funnel,
                "recipe": {"bucket": {"short_max_tokens": short_max, "tokenizer": "tiny:qwen2" * 12}}}  # fmt: skip
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


def test_diff_shows_snippets_changed_fields_and_fits_80_columns(tmp_path: Path) -> None:
    a = _version(tmp_path / "a", [_row("HumanEval/0", LONG_Q), _row("gone", "Reverse a string.")], 512)
    b_rows = [_row("HumanEval/0", LONG_Q, response="other"), _row("new/with-a-rather-long-identifier-42", "Add two.")]
    b = _version(tmp_path / "b", b_rows, 1024)
    d = diff_versions(a, b)
    assert (d.added, d.removed, d.changed) == (["new/with-a-rather-long-identifier-42"], ["gone"], ["HumanEval/0"])
    assert d.changed_fields == {"HumanEval/0": ["response"]}
    out = io.StringIO()
    render(d, Console(file=out, width=80, force_terminal=False))
    text = out.getvalue()
    assert "Reverse a string." in text and "Add two." in text and snippet(LONG_Q)[:40] in text
    assert "~ HumanEval/0 [response]" in text
    assert "bucket.short_max_tokens" in text
    too_wide = [line for line in text.splitlines() if len(line) > 80]
    assert not too_wide, too_wide


def test_snippet_is_one_short_line() -> None:
    assert snippet("a\n  b\tc") == "a b c"
    assert len(snippet(LONG_Q, 30)) == 30 and snippet(LONG_Q, 30).endswith("…")


def test_inspect_shows_the_status_breakdown() -> None:
    df = pl.DataFrame(
        [_row("1", "q"), _row("2", "q", status="timeout", bucket="long"), _row("3", "q", status="no_code")]
    )
    out = io.StringIO()
    Console(file=out, width=80).print(status_table(df))
    lines = out.getvalue().splitlines()
    text = "\n".join(lines)
    assert "verification status" in text
    body = [ln for ln in lines if any(s in ln for s in ("passed", "timeout", "no_code"))]
    cells = [[c.strip() for c in ln.split("│")[1:-1]] for ln in body]
    assert [c[0] for c in cells] == ["passed", "no_code", "timeout"]  # passed first, then by name
    assert cells[2] == ["timeout", "0", "1", "1"]
