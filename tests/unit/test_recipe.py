"""Recipes: strict validation with errors naming key and file, ``--set`` overrides, names and hashes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from z1data.recipe import Recipe, RecipeError, apply_override, load_recipe, recipe_name

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "recipes" / "tiny.yaml"


def tiny_data() -> dict:
    return yaml.safe_load(TINY.read_text())


def write(path: Path, data: dict | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def error_of(path: Path, overrides: list[str] | None = None) -> str:
    with pytest.raises(RecipeError) as ei:
        load_recipe(path, overrides)
    return str(ei.value)


# ---------------------------------------------------------------- loading
def test_tiny_recipe_loads() -> None:
    r = load_recipe(TINY)
    assert isinstance(r, Recipe)
    assert r.name == "tiny"
    assert [s.kind for s in r.sources] == ["humaneval"]
    assert [(t.name, t.backend) for t in r.generate.teachers] == [
        ("tiny-qwen2", "transformers"),
        ("canonical", "replay"),
    ]
    assert r.generate.teachers[1].replay is not None and r.generate.teachers[1].replay.kind == "humaneval_canonical"
    assert r.bucket.short_max_tokens == 160 and r.bucket.tokenizer == "tiny:qwen2"
    assert "name" not in r.as_dict()  # set from the path, never part of the recipe's content


def test_missing_file_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert str(path) in error_of(path)


@pytest.mark.parametrize(
    ("mutate", "key"),
    [
        (lambda d: d.update(seeed=1), "seeed"),
        (lambda d: d["bucket"].update(short_max_tokenz=512), "bucket.short_max_tokenz"),
        (
            lambda d: d["generate"]["teachers"][0]["sampling"].update(temprature=0.5),
            "generate.teachers.0.sampling.temprature",
        ),
        (lambda d: d["sources"][0].update(fields={"idd": "task_id"}), "sources.0.fields.idd"),
    ],
)
def test_unknown_key_names_key_and_file(tmp_path: Path, mutate, key: str) -> None:
    data = tiny_data()
    mutate(data)
    path = write(tmp_path / "r.yaml", data)
    msg = error_of(path)
    assert str(path) in msg and key in msg
    assert "Extra inputs are not permitted" in msg


@pytest.mark.parametrize(
    ("mutate", "key", "value"),
    [
        (lambda d: d["bucket"].update(short_max_tokens="lots"), "bucket.short_max_tokens", "lots"),
        (lambda d: d.update(shards="four"), "shards", "four"),
        (lambda d: d["sources"][0].update(kind="csv"), "sources.0.kind", "csv"),
        (lambda d: d["verify"].update(time_limit_s=-1), "verify.time_limit_s", "-1"),
    ],
)
def test_wrong_type_names_key_file_and_value(tmp_path: Path, mutate, key: str, value: str) -> None:
    data = tiny_data()
    mutate(data)
    path = write(tmp_path / "r.yaml", data)
    msg = error_of(path)
    assert str(path) in msg and key in msg and value in msg


def test_missing_required_block(tmp_path: Path) -> None:
    data = tiny_data()
    del data["bucket"]
    path = write(tmp_path / "r.yaml", data)
    msg = error_of(path)
    assert str(path) in msg and "bucket" in msg and "Field required" in msg


@pytest.mark.parametrize("text", ["seed: [1, 2\n", "bucket:\n  a: 1\n b: 2\n", "\tseed: 1\n"])
def test_invalid_yaml_names_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "bad.yaml", text)
    msg = error_of(path)
    assert str(path) in msg and "not valid YAML" in msg


def test_non_utf8_and_non_mapping_yaml_name_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"description: caf\xe9\n")
    assert str(path) in error_of(path)
    for text in ["- a\n- b\n", "", "42\n"]:
        path = write(tmp_path / "list.yaml", text)
        msg = error_of(path)
        assert str(path) in msg and "mapping" in msg


def test_name_key_is_refused(tmp_path: Path) -> None:
    data = tiny_data()
    data["name"] = "my-dataset"
    path = write(tmp_path / "r.yaml", data)
    msg = error_of(path)
    assert str(path) in msg and "'name'" in msg
    with pytest.raises(RecipeError, match="'name'"):
        load_recipe(TINY, ["name=sneaky"])


# ---------------------------------------------------------------- --set overrides
def test_set_parses_value_as_yaml() -> None:
    r = load_recipe(TINY, ["bucket.short_max_tokens=512", "verify.require_pass=true", "description=a b"])
    assert r.bucket.short_max_tokens == 512 and isinstance(r.bucket.short_max_tokens, int)
    assert r.verify.require_pass is True
    assert r.description == "a b"
    # The value may contain '=': only the first one splits key from value.
    assert load_recipe(TINY, ["description=x=1"]).description == "x=1"


def test_set_indexes_lists() -> None:
    r = load_recipe(TINY, ["sources.0.limit=3", "generate.teachers.0.sampling.max_new_tokens=8"])
    assert r.sources[0].limit == 3
    assert r.generate.teachers[0].sampling.max_new_tokens == 8
    assert r.generate.teachers[1].sampling.max_new_tokens == 4096  # the other teacher is untouched


def test_set_creates_missing_blocks() -> None:
    data = tiny_data()
    del data["verify"]
    apply_override(data, "verify.memory_mb=256")
    assert data["verify"] == {"memory_mb": 256}
    assert Recipe.model_validate(data).verify.memory_mb == 256


@pytest.mark.parametrize(
    ("assignment", "expect"),
    [
        ("bucket.short_max_tokenz=512", "bucket.short_max_tokenz"),
        ("nosuchblock.key=1", "nosuchblock"),
        ("bucket.short_max_tokens=lots", "bucket.short_max_tokens"),
        ("sources.5.limit=3", "sources.5.limit"),  # index out of range
        ("sources.first.limit=3", "sources.first.limit"),  # not an index
        ("seed.x=1", "seed.x"),  # into a scalar
        ("seed.x.y=1", "seed.x.y"),  # deeper into a scalar (was an AttributeError)
        ("description=[unclosed", "description"),  # value is not YAML (was a raw yaml error)
        ("bucket.short_max_tokens", "key=value"),  # no '='
    ],
)
def test_bad_set_is_a_recipe_error(assignment: str, expect: str) -> None:
    with pytest.raises(RecipeError) as ei:
        load_recipe(TINY, [assignment])
    msg = str(ei.value)
    assert str(TINY) in msg and expect in msg


# ---------------------------------------------------------------- names
def test_recipe_name_from_path(tmp_path: Path) -> None:
    assert recipe_name(Path("recipes/ablations/x.yaml")) == "ablations/x"
    assert recipe_name(Path("recipes/quickstart.yaml")) == "quickstart"
    assert recipe_name(tmp_path / "elsewhere" / "my-run.yaml") == "my-run"
    assert recipe_name(tmp_path / "recipes" / "a" / "b" / "c.yml") == "a/b/c"
    # Only directories named "recipes" count, the innermost one wins.
    assert recipe_name(Path("recipes/sub/recipes.yaml")) == "sub/recipes"
    assert recipe_name(tmp_path / "recipes" / "x" / "recipes" / "y.yaml") == "y"


def test_load_sets_name_from_path(tmp_path: Path) -> None:
    data = tiny_data()
    assert load_recipe(write(tmp_path / "recipes" / "ablations" / "short.yaml", data)).name == "ablations/short"
    assert load_recipe(write(tmp_path / "loose.yaml", data)).name == "loose"


# ---------------------------------------------------------------- hash
def test_hash_is_stable_and_ignores_formatting(tmp_path: Path) -> None:
    base = load_recipe(TINY)
    h = base.hash()
    assert len(h) == 64 and h == load_recipe(TINY).hash()
    # Same content written differently (key order, flow style, no comments, explicit defaults) and at another path.
    data = tiny_data()
    data["verify"]["stop_on_first_failure"] = False  # the default, spelled out
    data = dict(reversed(list(data.items())))
    other = write(tmp_path / "recipes" / "other.yaml", yaml.safe_dump(data, default_flow_style=True, sort_keys=True))
    r = load_recipe(other)
    assert r.name != base.name and r.hash() == h


@pytest.mark.parametrize(
    "assignment",
    [
        "bucket.short_max_tokens=161",
        "seed=43",
        "sources.0.limit=5",
        "generate.teachers.0.sampling.temperature=0.7",
        "generate.prompt.system=null",
        "verify.require_pass=true",
    ],
)
def test_hash_changes_with_semantic_value(assignment: str) -> None:
    assert load_recipe(TINY, [assignment]).hash() != load_recipe(TINY).hash()


# ---------------------------------------------------------------- teachers
def test_replay_teacher_needs_replay_block(tmp_path: Path) -> None:
    data = tiny_data()
    del data["generate"]["teachers"][1]["replay"]
    path = write(tmp_path / "r.yaml", data)
    msg = error_of(path)
    assert str(path) in msg and "generate.teachers.1" in msg and "'canonical'" in msg and "replay" in msg


def test_transformers_teacher_needs_model(tmp_path: Path) -> None:
    data = tiny_data()
    del data["generate"]["teachers"][0]["model"]
    path = write(tmp_path / "r.yaml", data)
    msg = error_of(path)
    assert str(path) in msg and "generate.teachers.0" in msg and "'tiny-qwen2'" in msg and "needs 'model'" in msg


def test_teacher_names_unique_and_list_non_empty(tmp_path: Path) -> None:
    data = tiny_data()
    data["generate"]["teachers"][1]["name"] = "tiny-qwen2"
    assert "unique" in error_of(write(tmp_path / "dup.yaml", data))
    data = tiny_data()
    data["generate"]["teachers"] = []
    assert "generate.teachers" in error_of(write(tmp_path / "empty.yaml", data))


def test_non_humaneval_source_needs_path(tmp_path: Path) -> None:
    data = tiny_data()
    data["sources"] = [{"kind": "jsonl"}]
    msg = error_of(write(tmp_path / "r.yaml", data))
    assert "sources.0" in msg and "needs 'path'" in msg
