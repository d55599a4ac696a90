"""The command line: help everywhere, verify on HumanEval, clear errors on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from z1data.cli import main, parser


@pytest.mark.parametrize(
    "cmd", [[], ["build"], ["inspect"], ["verify"], ["humaneval"], ["diff"], ["export"], ["push"], ["eval"], ["report"]]
)
def test_help_on_every_command(cmd: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        parser().parse_args([*cmd, "--help"])
    assert e.value.code == 0
    assert "usage: z1data" in capsys.readouterr().out


def test_verify_humaneval_canonical_and_prompts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["humaneval", str(tmp_path)]) == 0
    probs = str(tmp_path / "problems.jsonl")
    assert (
        main(
            [
                "verify",
                "--problems",
                probs,
                "--solutions",
                str(tmp_path / "solutions-canonical.jsonl"),
                "--out",
                str(tmp_path / "v.jsonl"),
            ]
        )
        == 0
    )
    assert "164/164 passed" in capsys.readouterr().out
    verdicts = [json.loads(line) for line in (tmp_path / "v.jsonl").read_text().splitlines()]
    assert len(verdicts) == 164 and all(v["passed"] and v["status"] == "passed" for v in verdicts)
    assert (
        main(
            [
                "verify",
                "--problems",
                probs,
                "--solutions",
                str(tmp_path / "solutions-prompts.jsonl"),
                "--out",
                str(tmp_path / "v0.jsonl"),
            ]
        )
        == 0
    )
    assert "0/164 passed" in capsys.readouterr().out


def test_verify_bad_input_names_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    probs = tmp_path / "p.jsonl"
    probs.write_text(
        json.dumps({"id": "p1", "question": "q", "tests": {"stdio": [{"input": "", "output": "1"}]}}) + "\n"
    )
    sols = tmp_path / "s.jsonl"
    sols.write_text(
        '{"problem_id": "p1", "solution_id": "s1", "code": "print(1)"}\n{"problem_id": "p1"\n'
        '{"problem_id": "zz", "solution_id": "s3", "code": "print(1)"}\n'
    )
    assert main(["verify", "--problems", str(probs), "--solutions", str(sols), "--out", str(tmp_path / "v")]) == 2
    out = capsys.readouterr().out
    assert f"{sols}:2: malformed_json" in out and f"{sols}:3: unknown_problem" in out
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert main(["verify", "--problems", str(empty), "--solutions", str(sols), "--out", str(tmp_path / "v")]) == 2
    assert "file is empty" in capsys.readouterr().out


def test_build_reports_recipe_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "sources: [{kind: humaneval}]\ngenerate: {teachers: [{name: t, backend: replay, "
        "replay: {kind: humaneval_canonical}}]}\nbucket: {tokenizer: tiny:qwen2, short_max_tokens: lots}\n"
    )
    assert main(["build", str(bad), "--version", "v1", "--data-dir", str(tmp_path / "d")]) == 2
    out = capsys.readouterr().out
    assert str(bad) in out and "bucket.short_max_tokens" in out
