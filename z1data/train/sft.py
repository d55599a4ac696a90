"""SFT on a dataset version: ``python -m z1data.train.sft CONFIG --version-dir DIR [--set key=value]``.

Glue over TRL, on purpose. Rows become ``messages`` ([system?], user=question, assistant=response) and the
loss covers only the assistant turn (``assistant_only_loss``; TRL swaps in a training chat template with
``{% generation %}`` markers for known templates such as Qwen2.5's). ``max_length`` is required in the config,
because Z1's script never set it and so trained on 512-token truncations. Rows longer than it are dropped
(``overlong: drop``, counted in ``z1data_train.json``) or truncated (``overlong: truncate``). Every SFTConfig
field may be set under ``trl:``; unknown keys anywhere are errors. A config naming ``accelerate_config``
re-launches itself under ``accelerate launch`` so ``make train`` stays one command on 8 GPUs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

OWNED = {"max_length", "assistant_only_loss", "output_dir", "model_init_kwargs"}  # set from the top-level keys


class TrainConfig(BaseModel):
    """A training recipe (``recipes/train/*.yaml``); unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    model: str  # Hub name, local dir or tiny:qwen2
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_length: int = Field(ge=8)  # prompt + response tokens; no default on purpose
    overlong: Literal["drop", "truncate"] = "drop"
    system_prompt: str | None = None  # None: the chat template's default applies (Qwen's, as in Z1)
    buckets: list[Literal["short", "long"]] = ["short", "long"]
    require_pass: bool = False  # only rows whose code passed the tests
    limit: int | None = Field(default=None, ge=1)
    output_dir: str | None = None  # default: models/<config stem>/<recipe>/<version>
    accelerate_config: str | None = None
    trl: dict[str, Any] = {}

    @field_validator("trl")
    @classmethod
    def _known_sft_fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        from trl import SFTConfig

        unknown = set(v) - {f.name for f in dataclasses.fields(SFTConfig)}
        if unknown:
            raise ValueError(f"unknown SFTConfig field(s): {sorted(unknown)}")
        if owned := set(v) & OWNED:
            raise ValueError(f"set {sorted(owned)} at the top level, not under trl")
        return v


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    from z1data.recipe import apply_override

    data = yaml.safe_load(Path(path).read_text()) or {}
    for o in overrides or []:
        apply_override(data, o)
    return TrainConfig.model_validate(data)


def to_messages(row: dict[str, Any], system: str | None) -> dict[str, Any]:
    """A dataset row as a chat: the question is the user turn, the whole response (reasoning + answer) the target."""
    sys_turn = [{"role": "system", "content": system}] if system else []
    return {
        "messages": [
            *sys_turn,
            {"role": "user", "content": row["question"]},
            {"role": "assistant", "content": row["response"]},
        ]
    }


def _keep(row: dict[str, Any], buckets: list[str], require_pass: bool) -> bool:
    return row["bucket"] in buckets and (row["passed"] or not require_pass)


def _fits(row: dict[str, Any], tokenizer: Any, max_length: int) -> bool:
    return len(tokenizer.apply_chat_template(row["messages"], tokenize=True)["input_ids"]) <= max_length


def load_version(version_dir: Path, cfg: TrainConfig, tokenizer: Any, num_proc: int | None = None) -> tuple[Any, int]:
    """The version's rows as a ``messages`` dataset (sorted shards, so the order is stable) and the overlong count."""
    import datasets

    files = sorted(str(p) for p in (version_dir / "data").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{version_dir}/data: no parquet shards (is it a dataset version?)")
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    ds = ds.filter(_keep, fn_kwargs={"buckets": list(cfg.buckets), "require_pass": cfg.require_pass})
    if cfg.limit is not None:
        ds = ds.select(range(min(cfg.limit, len(ds))))
    ds = ds.map(to_messages, fn_kwargs={"system": cfg.system_prompt}, remove_columns=ds.column_names)
    if cfg.overlong == "truncate":
        return ds, 0
    fits = ds.filter(_fits, fn_kwargs={"tokenizer": tokenizer, "max_length": cfg.max_length}, num_proc=num_proc)
    return fits, len(ds) - len(fits)


def default_output_dir(config_path: str, version_dir: Path) -> Path:
    from z1data.version import load_manifest

    m = load_manifest(version_dir)
    return Path("models") / Path(config_path).stem / m["recipe_name"] / m["version"]


def train(cfg: TrainConfig, version_dir: Path, output_dir: Path) -> Path:
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from z1data.tinymodel import resolve_model
    from z1data.version import load_manifest

    path = resolve_model(cfg.model)
    tok = AutoTokenizer.from_pretrained(path, revision=cfg.revision)
    ds, overlong = load_version(version_dir, cfg, tok, cfg.trl.get("dataset_num_proc"))
    if len(ds) == 0:
        raise ValueError(f"no training rows left in {version_dir} (buckets={cfg.buckets}, require_pass, max_length)")
    args = SFTConfig(
        output_dir=str(output_dir),
        max_length=cfg.max_length,
        assistant_only_loss=True,
        model_init_kwargs={"dtype": cfg.dtype, "revision": cfg.revision},
        **cfg.trl,
    )
    trainer = SFTTrainer(model=path, args=args, train_dataset=ds, processing_class=tok)
    result = trainer.train()
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        tok.save_pretrained(str(output_dir))
        m = load_manifest(version_dir)
        info = {
            "config": cfg.model_dump(),
            "version_dir": str(version_dir),
            "recipe_name": m["recipe_name"],
            "version": m["version"],
            "content_hash": m["content_hash"],
            "rows": len(ds),
            "dropped_overlong": overlong,
            "train_loss": result.training_loss,
            "steps": result.global_step,
        }
        (output_dir / "z1data_train.json").write_text(json.dumps(info, indent=2) + "\n")
    return output_dir


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m z1data.train.sft", description=__doc__.split("\n")[0])
    ap.add_argument("config", help="training recipe YAML (recipes/train/*.yaml)")
    ap.add_argument("--version-dir", required=True, help="a dataset version, e.g. data/quickstart/demo")
    ap.add_argument("--output-dir", help="default: the config's output_dir, else models/<config>/<recipe>/<version>")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. trl.max_steps=3")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config, a.set)
    except (OSError, ValueError) as e:  # pydantic's ValidationError is a ValueError: it names the bad key
        print(f"error: {a.config}: {e}", file=sys.stderr)
        return 2
    if cfg.accelerate_config and "LOCAL_RANK" not in os.environ:  # not yet inside a launcher: become one
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", cfg.accelerate_config]
        os.execv(sys.executable, [*launch, "-m", "z1data.train.sft", *argv])
    vdir = Path(a.version_dir)
    out = Path(a.output_dir or cfg.output_dir or default_output_dir(a.config, vdir))
    print(f"trained model saved to {train(cfg, vdir, out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
