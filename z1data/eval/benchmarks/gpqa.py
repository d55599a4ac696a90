"""GPQA-style multiple choice: the answer letter, from the last ``\\boxed{X}`` or an "answer is X" phrase.

By Hub name (``Idavidrein/gpqa``, config ``gpqa_diamond``; gated: log in or use a local copy) or a local file.
Rows are either GPQA's (``Question``, ``Correct Answer``, ``Incorrect Answer 1..3``, ``Record ID``: the choices
are shuffled with a seed derived from the record id, so every run and model sees the same order) or generic
(``question``, ``choices`` list, ``answer`` as a letter or a 0-based index, ``id``).
"""

from __future__ import annotations

import random
import re
from typing import Any, ClassVar

from z1data.eval.benchmarks.base import Benchmark, Item, JudgeOptions, Score
from z1data.hashing import derive_seed

LETTERS = "ABCDEFGHIJ"
ASK = "Answer with the letter of the correct choice in \\boxed{}, for example \\boxed{A}."


class GPQA(Benchmark):
    name = "gpqa"
    kind = "choice"
    default_source = "Idavidrein/gpqa"
    default_split = "train"
    options: ClassVar[dict[str, Any]] = {"config": "gpqa_diamond", "shuffle_seed": 0}

    def items(self) -> list[Item]:
        return [gpqa_item(r, j, self.opts["shuffle_seed"]) for j, r in enumerate(self.rows(self.opts["config"]))]

    def score(self, items: list[Item], responses: list[str], judge: JudgeOptions) -> list[Score]:
        out = []
        for item, response in zip(items, responses, strict=True):
            letter = extract_choice(response)
            out.append(Score(letter == item.target, letter or ""))
        return out


def gpqa_item(row: dict[str, Any], index: int, seed: int) -> Item:
    if "Question" in row:
        rid = str(row.get("Record ID") or index)
        correct = row["Correct Answer"].strip()
        choices = [correct, *(row[f"Incorrect Answer {k}"].strip() for k in (1, 2, 3))]
        random.Random(derive_seed(seed, rid)).shuffle(choices)
        question, answer = row["Question"].strip(), LETTERS[choices.index(correct)]
    else:
        rid, question, choices = str(row.get("id", index)), row["question"].strip(), list(row["choices"])
        a = row["answer"]
        answer = LETTERS[a] if isinstance(a, int) else str(a).strip().upper()
    listed = "\n".join(f"{LETTERS[k]}) {c}" for k, c in enumerate(choices))
    return Item(f"gpqa/{rid}", f"{question}\n\n{listed}\n\n{ASK}", answer)


def extract_choice(text: str) -> str | None:
    """The chosen letter: the last ``\\boxed{X}`` (``X``, ``(X)``, ``X)``), else the last "answer is/: X"."""
    boxed = re.findall(r"\\boxed\{\s*\(?([A-J])\)?[^}]*\}", text)
    if boxed:
        return boxed[-1]
    said = re.findall(r"[Aa]nswer(?:\s+is)?\s*[:：]?\s*\(?\**([A-J])\b", text)
    return said[-1] if said else None
