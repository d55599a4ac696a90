"""The shared config loader: ``extends``, ``--set``, errors naming key and file, for recipes, eval and train configs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from z1data.config import ConfigError, load_config, read_config, validate
from z1data.eval.runner import load_eval_config
from z1data.recipe import RecipeError, load_recipe

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "recipes" / "tiny.yaml"
HUMANEVAL_STW = REPO / "recipes" / "eval" / "humaneval-stw.yaml"
TINY_CPU = REPO / "recipes" / "train" / "tiny-cpu.yaml"


def write(path: Path, data: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int = 1
    tags: list[str] = []


class Outer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    inner: Inner = Inner()


# ---------------------------------------------------------------- read_config
def test_extends_merges_mappings_and_replaces_lists(tmp_path: Path) -> None:
    write(tmp_path / "base" / "parent.yaml", {"name": "p", "inner": {"n": 2, "tags": ["a", "b"]}, "keep": 1})
    child = write(tmp_path / "child.yaml", {"extends": "base/parent.yaml", "inner": {"tags": ["c"]}})
    assert read_config(child) == {"name": "p", "inner": {"n": 2, "tags": ["c"]}, "keep": 1}


def test_extends_chain_cycle_and_missing_parent(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", {"extends": "b.yaml", "x": 1})
    write(tmp_path / "b.yaml", {"extends": "c.yaml", "y": 2})
    write(tmp_path / "c.yaml", {"x": 0, "z": 3})
    assert read_config(tmp_path / "a.yaml") == {"x": 1, "y": 2, "z": 3}
    write(tmp_path / "c.yaml", {"extends": "a.yaml"})
    with pytest.raises(ConfigError, match="'extends' cycle"):
        read_config(tmp_path / "a.yaml")
    orphan = write(tmp_path / "orphan.yaml", {"extends": "nope.yaml"})
    with pytest.raises(ConfigError) as ei:
        read_config(orphan)
    assert "nope.yaml" in str(ei.value) and f"extended by {orphan.resolve()}" in str(ei.value)
    with pytest.raises(ConfigError, match="'extends' must be a path"):
        read_config(write(tmp_path / "bad.yaml", {"extends": ["a.yaml"]}))


def test_set_overrides_after_extends_and_parse_yaml(tmp_path: Path) -> None:
    write(tmp_path / "parent.yaml", {"name": "p", "inner": {"n": 2}})
    child = write(tmp_path / "child.yaml", {"extends": "parent.yaml"})
    data = read_config(child, ["inner.n=7", "inner.tags=[x, y]", "name=a=b"])
    assert data == {"name": "a=b", "inner": {"n": 7, "tags": ["x", "y"]}}
    with pytest.raises(ConfigError) as ei:
        read_config(child, ["name.deeper.x=1"])
    assert str(child) in str(ei.value) and "name.deeper.x" in str(ei.value)


# ---------------------------------------------------------------- validate / load_config
def test_unknown_key_and_wrong_type_name_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", {"name": "x", "inner": {"m": 1, "n": "lots"}})
    with pytest.raises(ConfigError) as ei:
        load_config(path, Outer)
    msg = str(ei.value)
    assert str(path) in msg and "inner.m" in msg and "Extra inputs are not permitted" in msg
    assert "inner.n" in msg and "'lots'" in msg
    with pytest.raises(ConfigError, match="name: Field required"):
        validate(Outer, {}, path)


def test_load_config_adds_extra_keys_and_applies_set(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", {"inner": {"n": 2}})
    cfg = load_config(path, Outer, ["inner.tags=[a]"], name="from-code")
    assert cfg == Outer(name="from-code", inner=Inner(n=2, tags=["a"]))


def test_config_module_imports_nothing_from_z1data() -> None:
    tree = ast.parse((REPO / "z1data" / "config.py").read_text())
    names = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert names and not [n for n in names if n.split(".")[0] == "z1data"]


# ---------------------------------------------------------------- recipes
def test_recipe_extends_and_errors_stay_recipe_errors(tmp_path: Path) -> None:
    text = f"extends: {TINY}\nbucket: {{short_max_tokens: 99}}\n"
    child = write(tmp_path / "recipes" / "ab" / "short.yaml", text)
    r = load_recipe(child)
    assert r.name == "ab/short" and r.bucket.short_max_tokens == 99 and r.bucket.tokenizer == "tiny:qwen2"
    assert issubclass(RecipeError, ConfigError)
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe(write(tmp_path / "loop.yaml", "extends: loop.yaml\n"))


# ---------------------------------------------------------------- eval configs
def test_eval_config_extends(tmp_path: Path) -> None:
    child = write(tmp_path / "quick.yaml", f"extends: {HUMANEVAL_STW}\nbudgets: [16, 32]\nengine: {{batch_size: 2}}\n")
    cfg = load_eval_config(child, ["limit=4"])
    assert cfg.benchmark == "humaneval" and cfg.budgets == [16, 32] and cfg.limit == 4
    assert cfg.engine == {"dtype": "auto", "batch_size": 2}  # mappings merge
    assert cfg.total_max_tokens == 5000


def test_eval_config_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path / "e.yaml", {"benchmark": "humaneval", "budgets": [8], "total_max_tokens": 16})
    with pytest.raises(ConfigError) as ei:
        load_eval_config(path, ["judge.time_limit=3"])
    msg = str(ei.value)
    assert str(path) in msg and "judge.time_limit" in msg and "Extra inputs are not permitted" in msg


# ---------------------------------------------------------------- train configs
def test_train_config_extends_and_set(tmp_path: Path) -> None:
    sft = pytest.importorskip(
        "z1data.train.sft", reason="the train extra (trl) is not installed: make install installs it"
    )
    child = write(tmp_path / "tiny-long.yaml", f"extends: {TINY_CPU}\nbuckets: [long]\nmax_steps: 5\n")
    cfg = sft.load_config(child, ["learning_rate=0.01"])
    assert cfg.args.buckets == ["long"] and cfg.model == "tiny:qwen2" and cfg.max_length == 1024
    assert cfg.trl["max_steps"] == 5 and cfg.trl["learning_rate"] == 0.01 and cfg.trl["use_cpu"] is True


def test_train_config_errors_name_key_and_file(tmp_path: Path) -> None:
    sft = pytest.importorskip(
        "z1data.train.sft", reason="the train extra (trl) is not installed: make install installs it"
    )
    with pytest.raises(ConfigError) as ei:
        sft.load_config(TINY_CPU, ["epochs=2", "max_steps=lots", "dtype=fp32"])
    msg = str(ei.value)
    assert str(TINY_CPU) in msg and "epochs" in msg
    assert "max_steps" in msg and "'lots'" in msg and "dtype" in msg and "'fp32'" in msg
    old = write(tmp_path / "old.yaml", {"model_name_or_path": "tiny:qwen2", "trl": {"max_steps": 3}})
    with pytest.raises(ConfigError, match="top level") as ei:
        sft.load_config(old)
    assert str(old) in str(ei.value)
    with pytest.raises(ConfigError, match="assistant_only_loss"):
        sft.load_config(TINY_CPU, ["assistant_only_loss=false"])
    with pytest.raises(ConfigError, match="buckets"):
        sft.load_config(TINY_CPU, ["buckets=[medium]"])


def test_train_cli_flags_override_the_file_and_set(tmp_path: Path) -> None:
    sft = pytest.importorskip(
        "z1data.train.sft", reason="the train extra (trl) is not installed: make install installs it"
    )
    argv = [str(TINY_CPU), "--version-dir", "v", "--set", "max_steps=9", "--set", "seed=1", "--max_steps", "4"]
    config, overrides, flags = sft.parse_cli(argv)
    assert (config, overrides) == (str(TINY_CPU), ["max_steps=9", "seed=1"])
    assert flags == {"version_dir": "v", "max_steps": 4}  # only what was given: defaults never mask the file
    cfg = sft.load_config(config, overrides, flags)
    assert (cfg.trl["max_steps"], cfg.trl["seed"], cfg.args.version_dir) == (4, 1, "v")
    args = cfg.sft_config(tmp_path / "out")
    assert args.output_dir == str(tmp_path / "out") and args.max_steps == 4 and args.assistant_only_loss
    assert args.max_length == 1024 and args.model_init_kwargs["dtype"] == "float32"
