"""SFT on a dataset version: ``python -m z1data.train.sft CONFIG --version-dir DIR [--set key=value] [--option v]``.

Glue over TRL, on purpose, in TRL's own shape (``trl/scripts/sft.py``, open-r1's ``sft.py``): the options are
three dataclasses, z1data's ``ZArgs`` and TRL's ``SFTConfig`` and ``ModelConfig``, under ``TrlParser``, so
``--help`` lists every one. A config is one flat YAML mapping of those options, read by the shared strict loader
(``z1data.config``: ``extends:``, ``--set key=value`` parsed as YAML); any option is also a flag
(``--max_steps 10``), applied last. Unknown keys, wrong types and keys the script owns are errors naming the
key and the file.

Rows become ``messages`` ([system?], user=question, assistant=response) and the loss covers only the assistant
turn (``assistant_only_loss``; TRL swaps in a training chat template with ``{% generation %}`` markers for known
templates such as Qwen2.5's). ``max_length`` is required in the config, because Z1's script never set it and so
trained on 512-token truncations. Rows longer than it are dropped (``overlong: drop``, counted in
``z1data_train.json``) or truncated (``overlong: truncate``). A config naming ``accelerate_config`` re-launches
itself under ``accelerate launch`` so ``make train`` stays one command on 8 GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, get_type_hints

from pydantic import ConfigDict, PydanticUserError, TypeAdapter, ValidationError
from trl import ModelConfig, SFTConfig, TrlParser

from z1data.config import ConfigError, read_config

BUCKETS = ("short", "long")
#: SFTConfig fields the script sets itself, and why they are refused in a config.
OWNED = {
    "assistant_only_loss": "always true here: the loss covers only the assistant turn",
    "model_init_kwargs": "built from the ModelConfig keys at the top level (dtype, model_revision, "
    "attn_implementation) and trust_remote_code; set those instead",
}
_STRICT = ConfigDict(strict=True, arbitrary_types_allowed=True)


@dataclass
class ZArgs:
    """z1data's own options: which rows of which dataset version train, and how they become chats."""

    version_dir: str | None = field(
        default=None, metadata={"help": "Dataset version to train on, e.g. data/quickstart/demo (required)."}
    )
    buckets: list[str] = field(
        default_factory=lambda: list(BUCKETS), metadata={"help": "Length buckets that train: short, long or both."}
    )
    require_pass: bool = field(default=False, metadata={"help": "Only rows whose code passed the tests."})
    limit: int | None = field(default=None, metadata={"help": "At most this many rows (after the filters)."})
    overlong: Literal["drop", "truncate"] = field(
        default="drop",
        metadata={"help": "Rows longer than max_length: drop (counted in z1data_train.json) or truncate."},
    )
    system_prompt: str | None = field(
        default=None, metadata={"help": "System turn; None: the chat template's default (Qwen's, as in Z1)."}
    )
    accelerate_config: str | None = field(
        default=None, metadata={"help": "Set: re-launch under `accelerate launch --config_file` with this file."}
    )

    def __post_init__(self) -> None:
        if not self.buckets or not set(self.buckets) <= set(BUCKETS):
            raise ValueError(f"buckets: expected a non-empty list of {list(BUCKETS)}, got {self.buckets!r}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit: must be at least 1, got {self.limit}")


def make_parser() -> TrlParser:
    """TRL's parser over z1data's, TRL's model and TRL's SFT options, plus the config file and ``--set``."""
    parser = TrlParser(
        (ZArgs, SFTConfig, ModelConfig),
        prog="python -m z1data.train.sft",
        description=__doc__.split("\n")[0]
        + " Every option below is also a top-level key of the config file; the file (with its extends chain)"
        " is applied first, then --set, then flags.",
    )
    parser.add_argument("config", help="train config YAML (recipes/train/*.yaml)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key, e.g. max_steps=10"
    )
    return parser


def _field_errors(dtype: type, given: dict[str, Any]) -> list[str]:
    """Type errors of ``given`` against ``dtype``'s annotations and ``choices``, one ``  key: why`` line each.

    The dataclasses themselves check no types, and SFTConfig cannot be built off the training machine.
    """
    hints = get_type_hints(dtype)
    by_name = {f.name: f for f in fields(dtype)}
    out = []
    for key, value in given.items():
        choices = by_name[key].metadata.get("choices")
        if choices is not None and value not in choices:
            out.append(f"  {key}: Input should be one of {', '.join(map(repr, choices))} (got {value!r})")
            continue
        try:
            TypeAdapter(hints[key], config=_STRICT).validate_python(value)
        except PydanticUserError:  # a type pydantic cannot check: SFTConfig checks it when it is built
            continue
        except ValidationError as e:
            msgs = dict.fromkeys(err["msg"] for err in e.errors())
            out.append(f"  {key}: {' or '.join(msgs)} (got {value!r})")
    return out


@dataclass(frozen=True)
class TrainConfig:
    """A checked train config: z1data's options, TRL's ModelConfig, and the SFTConfig keys as written.

    The SFTConfig itself is built by ``sft_config`` on the training machine: its checks look at the hardware
    (``bf16``, ``tf32`` need a GPU), and a GPU config must still load and check on a CPU box.
    """

    args: ZArgs
    model_args: ModelConfig
    trl: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.model_args.model_name_or_path)

    @property
    def max_length(self) -> int:
        return int(self.trl["max_length"])

    @property
    def accelerate_config(self) -> str | None:
        return self.args.accelerate_config

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str | Path = "<config>") -> TrainConfig:
        """Split a flat mapping over the three dataclasses; every bad key is reported, with ``path``."""
        if "trl" in data:
            raise ConfigError(f"{path}: no 'trl:' block: SFTConfig fields go at the top level of a train config")
        types = (ZArgs, SFTConfig, ModelConfig)
        parts = [{k: v for k, v in data.items() if k in {f.name for f in fields(t) if f.init}} for t in types]
        known = set().union(*parts)
        errors = [
            f"  {k}: not a z1data, SFTConfig or ModelConfig option (python -m z1data.train.sft --help lists them)"
            for k in sorted(set(data) - known, key=str)
        ]
        errors += [f"  {k}: set by z1data.train.sft, not by the config: {why}" for k, why in OWNED.items() if k in data]
        for key in ("model_name_or_path", "max_length"):
            if data.get(key) is None:
                errors.append(f"  {key}: Field required (no default on purpose)")
        for t, given in zip(types, parts, strict=True):
            errors += _field_errors(t, {k: v for k, v in given.items() if k not in OWNED})
        if not errors and data["max_length"] < 8:
            errors.append(f"  max_length: must be at least 8 (got {data['max_length']})")
        if errors:
            raise ConfigError(f"{path}: invalid train config:\n" + "\n".join(errors))
        z, sft, m = parts
        try:
            return cls(ZArgs(**z), ModelConfig(**m), sft)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path}: invalid train config:\n  {e}") from None

    def as_dict(self) -> dict[str, Any]:
        """One flat mapping, the config's own shape: every z1data and ModelConfig option, the SFTConfig keys set."""
        return {**asdict(self.args), **asdict(self.model_args), **self.trl}

    def sft_config(self, output_dir: Path) -> SFTConfig:
        """The SFTConfig, built by TRL's parser (strict: no key left over) with the fields the script owns."""
        m = self.model_args
        init = {"revision": m.model_revision, "attn_implementation": m.attn_implementation, "dtype": m.dtype}
        owned = {
            "output_dir": str(output_dir),
            "assistant_only_loss": True,
            "model_init_kwargs": {**init, "trust_remote_code": self.trl.get("trust_remote_code", False)},
        }
        _, sft, _ = make_parser().parse_dict({**self.as_dict(), **owned}, allow_extra_keys=False)
        return sft


def load_config(
    path: str | Path, overrides: list[str] | None = None, flags: dict[str, Any] | None = None
) -> TrainConfig:
    """The train config at ``path`` through the shared loader (``extends``, ``--set``), then ``flags``, checked."""
    data = read_config(path, overrides, kind="train config")
    return TrainConfig.from_dict({**data, **(flags or {})}, path)


def parse_cli(argv: list[str]) -> tuple[str, list[str], dict[str, Any]]:
    """The config path, the ``--set`` overrides and the option flags given (only those: defaults stay the file's)."""
    parser = make_parser()
    unset = object()
    names = [f.name for t in parser.dataclass_types for f in fields(t) if f.init]
    # A pre-filled namespace keeps argparse from writing defaults, so an absent flag never hides a config value.
    ns = parser.parse_args(argv, namespace=argparse.Namespace(**dict.fromkeys(names, unset)))
    return ns.config, ns.set, {k: v for k in names if (v := getattr(ns, k)) is not unset}


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

    z = cfg.args
    files = sorted(str(p) for p in (version_dir / "data").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{version_dir}/data: no parquet shards (is it a dataset version?)")
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    ds = ds.filter(_keep, fn_kwargs={"buckets": list(z.buckets), "require_pass": z.require_pass})
    if z.limit is not None:
        ds = ds.select(range(min(z.limit, len(ds))))
    ds = ds.map(to_messages, fn_kwargs={"system": z.system_prompt}, remove_columns=ds.column_names)
    if z.overlong == "truncate":
        return ds, 0
    fits = ds.filter(_fits, fn_kwargs={"tokenizer": tokenizer, "max_length": cfg.max_length}, num_proc=num_proc)
    return fits, len(ds) - len(fits)


def overlong_line(kept: int, overlong: int, max_length: int) -> str:
    """The row count a user must see: rows longer than ``max_length`` silently shrink the dataset otherwise."""
    share = f" ({overlong / (kept + overlong):.1%})" if overlong else ""
    return f"rows: {kept} train, {overlong} dropped as longer than max_length={max_length}{share}"


def default_output_dir(config_path: str, version_dir: Path) -> Path:
    from z1data.version import load_manifest

    m = load_manifest(version_dir)
    return Path("models") / Path(config_path).stem / m["recipe_name"] / m["version"]


def train(cfg: TrainConfig, version_dir: Path, output_dir: Path) -> Path:
    """TRL's SFTTrainer on the version's rows, as ``trl/scripts/sft.py`` wires it (PEFT and quantization included)."""
    from transformers import AutoTokenizer
    from trl import SFTTrainer, get_peft_config, get_quantization_config

    from z1data.tinymodel import resolve_model
    from z1data.version import load_manifest

    path = resolve_model(cfg.model)
    remote = cfg.trl.get("trust_remote_code", False)
    tok = AutoTokenizer.from_pretrained(path, revision=cfg.model_args.model_revision, trust_remote_code=remote)
    ds, overlong = load_version(version_dir, cfg, tok, cfg.trl.get("dataset_num_proc"))
    print(overlong_line(len(ds), overlong, cfg.max_length), flush=True)  # before hours of training, not after
    if len(ds) == 0:
        z = cfg.args
        raise ValueError(f"no training rows left in {version_dir} (buckets={z.buckets}, require_pass, max_length)")
    trainer = SFTTrainer(
        model=path,
        args=cfg.sft_config(output_dir),
        train_dataset=ds,
        processing_class=tok,
        quantization_config=get_quantization_config(cfg.model_args),
        peft_config=get_peft_config(cfg.model_args),
    )
    result = trainer.train()
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        tok.save_pretrained(str(output_dir))
        m = load_manifest(version_dir)
        info = {
            "config": cfg.as_dict(),
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
    config, overrides, flags = parse_cli(argv)
    try:
        cfg = load_config(config, overrides, flags)
    except (OSError, ValueError) as e:  # ConfigError is a ValueError: it names the file and the bad key
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not cfg.args.version_dir:
        print(f"error: {config}: no dataset version: pass --version-dir DIR (or set version_dir)", file=sys.stderr)
        return 2
    if cfg.accelerate_config and "LOCAL_RANK" not in os.environ:  # not yet inside a launcher: become one
        launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", cfg.accelerate_config]
        os.execv(sys.executable, [*launch, "-m", "z1data.train.sft", *argv])
    vdir = Path(cfg.args.version_dir)
    out = Path(cfg.trl.get("output_dir") or default_output_dir(config, vdir))
    from z1data.console import library_logs  # library warnings to a file; TRL's progress stays on the terminal

    print(f"library logs: {library_logs(out / 'train.log')} (-v / Z1DATA_VERBOSE=1: shown here)", flush=True)
    saved = train(cfg, vdir, out)
    info_file = saved / "z1data_train.json"
    if info_file.is_file():  # rank 0 wrote it
        info = json.loads(info_file.read_text())
        print(f"{overlong_line(info['rows'], info['dropped_overlong'], cfg.max_length)}; {info['steps']} steps, "
              f"final loss {info['train_loss']:.4f}")  # fmt: skip
    print(f"trained model saved to {saved} (details: {info_file})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
