"""YAML recipes validated into typed config.

A recipe is the whole description of a dataset version: sources, teachers, verification
limits, bucketing. Unknown keys and wrong types are errors that name the key and the file
(pydantic with ``extra="forbid"``). ``--set a.b=c`` overrides parse ``c`` as YAML, so
``--set bucket.short_max_tokens=512`` gives an int and ``--set verify.require_pass=true`` a bool.
The recipe path names the experiment: ``recipes/ablations/short-only.yaml`` builds into
``data/ablations/short-only/<VERSION>/``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from z1data.config import ConfigError, read_config, validate
from z1data.config import apply_override as apply_override  # re-exported: callers imported it from here


class RecipeError(ConfigError):
    """A recipe that cannot be used; the message names the file and the key."""


def data_label(path: str | None) -> str:
    """How a dataset path appears in rows: a Hub name as is, a local file or directory by its name only,
    so the same data gives the same rows (and content hash) wherever the checkout or data lives."""
    if path and (Path(path).is_absolute() or Path(path).exists()):
        return Path(path).name
    return str(path)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- sources
class FieldMap(_Strict):
    """Maps a foreign dataset's columns onto the Problem schema (adapter)."""

    id: str | None = "id"  # null: ids derive from the question text (sha256), for datasets without ids
    question: str = "question"
    tests: str | None = "tests"  # a column in the native tests format
    allow_untested: bool = False  # keep problems without tests (status no_tests), e.g. Z1-Code-Reasoning
    # Foreign test layouts, used when ``tests`` is absent in the data:
    stdio_inputs: str | None = None  # column with a list of inputs (APPS/CodeContests style)
    stdio_outputs: str | None = None
    check_code: str | None = None  # HumanEval/MBPP style test code
    entry_point: str | None = None
    starter_code: str | None = None
    difficulty: str | None = None


#: Source presets that map a public dataset's own columns (docs/sources.md); ``fields`` does not apply to them.
DATASET_PRESETS = ("apps", "taco", "codecontests", "livecodebench", "kodcode", "mbpp")


class SourceConfig(_Strict):
    kind: Literal[
        "humaneval", "jsonl", "parquet", "hf", "apps", "taco", "codecontests", "livecodebench", "kodcode", "mbpp"
    ]
    path: str | None = None  # file / glob / directory, or a Hub name for kind=hf and the dataset presets
    split: str = "train"  # a Hub name's split
    subset: str | None = None  # a Hub name's configuration (e.g. MBPP's ``full`` / ``sanitized``)
    name: str | None = None  # source label stored on every row; defaults to kind/path
    fields: FieldMap = FieldMap()
    limit: int | None = Field(default=None, ge=1)
    # Test caps per problem, first cases in dataset order (CodeContests' generated tests run to gigabytes); the
    # row keeps its uncapped count in ``tests_total``. A problem whose first case alone exceeds the byte cap
    # is quarantined (``tests_over_cap``).
    max_tests: int | None = Field(default=None, ge=1)
    max_test_bytes: int | None = Field(default=None, ge=1)  # stdin + expected output (or call JSON) summed

    @model_validator(mode="after")
    def _needs_path(self) -> SourceConfig:
        if self.kind != "humaneval" and not self.path:
            raise ValueError(f"source kind '{self.kind}' needs 'path'")
        if self.kind in DATASET_PRESETS and self.fields != FieldMap():
            raise ValueError(f"source kind '{self.kind}' maps the dataset's own columns: 'fields' is not used")
        return self

    @property
    def label(self) -> str:
        return self.name or (self.kind if self.kind == "humaneval" else f"{self.kind}:{data_label(self.path)}")


# ---------------------------------------------------------------- teachers
class Sampling(_Strict):
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int | None = None
    max_new_tokens: int = Field(default=4096, ge=1)


class PromptConfig(_Strict):
    system: str | None = "Please reason step by step."  # Z1's code-eval system prompt
    template: str = "{question}"  # ``{question}`` and ``{starter_code}`` are filled in


class ReplaySource(_Strict):
    """Where replayed responses come from: HumanEval's canonical solutions, a dataset preset's reference
    solutions (``kind: preset``, ``preset: apps``: the same path and split as the source, so ids match), or any
    dataset."""

    kind: Literal["humaneval_canonical", "preset", "jsonl", "parquet", "hf"]
    preset: Literal["apps", "taco", "codecontests", "mbpp", "kodcode"] | None = (
        None  # kind=preset: whose ``solutions`` to replay
    )
    path: str | None = None
    split: str = "train"
    subset: str | None = None  # kind=preset: a Hub name's configuration
    max_solutions: int | None = Field(default=None, ge=1)  # kind=preset: the first N per problem

    problem_id: str = "problem_id"  # column joining a response to a problem id
    response: str | None = "response"  # column with the full response ...
    code: str | None = None  # ... or with bare code (wrapped into a fenced block)

    @model_validator(mode="after")
    def _preset(self) -> ReplaySource:
        if self.kind == "preset" and not (self.preset and self.path):
            raise ValueError("replay kind 'preset' needs 'preset' (apps, taco, codecontests, mbpp) and 'path'")
        if self.kind != "preset" and (self.preset or self.max_solutions or self.subset):
            raise ValueError(f"replay kind '{self.kind}': 'preset', 'subset' and 'max_solutions' need kind 'preset'")
        return self


#: The TeacherConfig fields each backend reads, named as its engine's keywords: the one list that validation,
#: ``teacher_params`` and the engine teacher use. Another backend's option is an error, not a silent no-op.
BACKEND_OPTIONS: dict[str, frozenset[str]] = {
    "transformers": frozenset({"dtype"}),
    "vllm": frozenset({"dtype", "tensor_parallel_size", "max_model_len", "gpu_memory_utilization", "enforce_eager"}),
    "openai": frozenset(
        {"base_url", "api", "served_model", "api_key_env", "max_concurrency", "max_retries", "timeout_s", "extra_body"}
    ),
    "replay": frozenset(),
}
#: Options that change speed or where a request goes, never what comes back: kept out of fingerprints and
#: request keys, so more concurrency or another server of the same model (``base_url``) re-sends nothing.
THROUGHPUT_OPTIONS = frozenset(
    {"gpu_memory_utilization", "max_concurrency", "max_retries", "timeout_s", "api_key_env", "base_url"}
)


class TeacherConfig(_Strict):
    name: str
    backend: Literal["transformers", "vllm", "openai", "replay"]
    model: str | None = None  # Hub name, local path, or ``tiny:qwen2`` (built locally); openai: names the tokenizer
    revision: str | None = None
    samples: int = Field(default=1, ge=1)
    sampling: Sampling = Sampling()
    # This teacher's own prompt, replacing ``generate.prompt`` (e.g. one model asked two ways: terse and
    # step by step). None: the shared prompt. In the fingerprint only when set.
    prompt: PromptConfig | None = None
    batch_size: int = Field(default=8, ge=1)  # in the fingerprint: bf16 greedy batches can differ by padding
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    replay: ReplaySource | None = None
    # vllm: offline vllm.LLM (seed: the recipe's)
    tensor_parallel_size: int = Field(default=1, ge=1)  # GPUs per model replica
    max_model_len: int | None = Field(default=None, ge=1)  # context (prompt + completion); default: the model's
    gpu_memory_utilization: float = Field(default=0.9, gt=0.0, le=1.0)  # speed only
    enforce_eager: bool = False  # no CUDA graphs: slower, starts faster
    # openai: an OpenAI-compatible server (vllm serve, SGLang, hosted APIs)
    base_url: str | None = None  # e.g. http://127.0.0.1:8000/v1
    api: Literal["completions", "chat"] = "completions"  # completions: prompt rendered with the teacher's template
    served_model: str | None = None  # the server's name for the model (default: model)
    api_key_env: str | None = None  # name of the environment variable holding the API key (never the key)
    max_concurrency: int = Field(default=16, ge=1)  # requests in flight; speed only
    max_retries: int = Field(default=5, ge=0)  # on 429 / 5xx / timeouts, with backoff; speed only
    timeout_s: float = Field(default=600.0, gt=0)  # per HTTP attempt; speed only
    extra_body: dict[str, Any] | None = None  # merged into each request body (e.g. {add_special_tokens: false})

    @model_validator(mode="after")
    def _backend_fields(self) -> TeacherConfig:
        if self.backend == "replay" and self.replay is None:
            raise ValueError(f"teacher '{self.name}': backend 'replay' needs a 'replay' block")
        if self.backend != "replay" and not self.model:
            raise ValueError(f"teacher '{self.name}': backend '{self.backend}' needs 'model'")
        if self.backend == "openai" and not self.base_url:
            raise ValueError(f"teacher '{self.name}': backend 'openai' needs 'base_url'")
        # Compared with defaults, not with the keys given: a dumped recipe (every default written out) re-validates.
        fields = type(self).model_fields
        others = frozenset().union(*BACKEND_OPTIONS.values()) - BACKEND_OPTIONS[self.backend]
        wrong = sorted(k for k in others if getattr(self, k) != fields[k].default)
        if wrong:
            raise ValueError(f"teacher '{self.name}': {', '.join(wrong)} not used by backend '{self.backend}'")
        return self


class GenerateConfig(_Strict):
    prompt: PromptConfig = PromptConfig()
    teachers: list[TeacherConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> GenerateConfig:
        names = [t.name for t in self.teachers]
        if len(set(names)) != len(names):
            raise ValueError(f"teacher names must be unique, got {names}")
        return self


# ---------------------------------------------------------------- verify / bucket / engine
class VerifyConfig(_Strict):
    time_limit_s: float = Field(default=4.0, gt=0)  # per test, unless the problem sets one
    memory_mb: int = Field(default=1024, ge=64)
    stop_on_first_failure: bool = False
    float_tol: float | None = Field(default=None, ge=0)  # stdio numbers within this; a problem's own wins
    require_pass: bool = False  # verification labels; dropping failures is a recipe choice
    workers: int | None = None  # concurrent executions per task; default: CPU count
    isolation: Literal["bwrap", "none"] = "bwrap"  # "none" runs untrusted code unisolated (logged loudly)
    sandbox_env: str | None = None  # a venv / install prefix whose site-packages the code may import (read-only)


class BucketConfig(_Strict):
    tokenizer: str  # the *student* tokenizer: Hub name, local path or ``tiny:qwen2``
    short_max_tokens: int = Field(ge=1)  # num_tokens <= this is "short", else "long"
    batch_size: int = Field(default=256, ge=1)


# ---------------------------------------------------------------- curation (all optional)
class NearDedupConfig(_Strict):
    threshold: float = Field(default=0.8, gt=0.0, le=1.0)  # estimated Jaccard of word shingles
    num_perm: int = Field(default=128, ge=16)
    shingle: int = Field(default=5, ge=1)  # words per shingle


class DedupConfig(_Strict):
    """Problem dedup: exact (normalised text) then near-duplicate (MinHash LSH)."""

    exact: bool = True
    near: NearDedupConfig | None = NearDedupConfig()


class BenchmarkRef(_Strict):
    kind: Literal["humaneval", "jsonl", "parquet", "hf"]
    path: str | None = None
    split: str = "test"
    field: str = "question"  # the column with the benchmark's problem text (not used for humaneval)
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or (self.kind if self.kind == "humaneval" else f"{self.kind}:{data_label(self.path)}")


class DecontaminateConfig(_Strict):
    benchmarks: list[BenchmarkRef] = Field(min_length=1)
    ngram: int = Field(default=8, ge=1)  # open-r1 uses 8-grams of words


class RepetitionConfig(_Strict):
    """Flags a response whose word n-grams repeat: 1 - unique/total n-grams above ``max_repeat_fraction``."""

    ngram: int = Field(default=10, ge=2)
    max_repeat_fraction: float = Field(default=0.3, gt=0.0, lt=1.0)


class FiltersConfig(_Strict):
    """Row filters after bucketing; the first that rejects a row names the drop reason."""

    drop_truncated: bool = False  # finish_reason == length
    repetition: RepetitionConfig | None = None
    min_tokens: int | None = Field(default=None, ge=0)  # Z1's minimum was 25
    max_tokens: int | None = Field(default=None, ge=1)
    statuses: (
        list[Literal["passed", "failed", "timeout", "memory", "runtime_error", "syntax_error", "no_code"]] | None
    ) = None
    min_pass_rate: float | None = Field(default=None, ge=0.0, le=1.0)


class BudgetConfig(_Strict):
    """Z1's greedy token-budget selection (data/data_select.py)."""

    tokens: int = Field(ge=1)
    mode: Literal["length", "sample"]  # longest first / shortest first
    # Equal token counts keep dataset order (source, row, teacher, sample), as Z1's stable sort over its
    # file does; ``id`` keeps row-id order instead (z1data before source order was recorded).
    ties: Literal["source", "id"] = "source"


class SelectConfig(_Strict):
    per_problem: Literal["all", "shortest", "shortest_passing"] = "all"
    mix: dict[Literal["short", "long"], float] | None = None  # e.g. {short: 0.7, long: 0.3}
    budget: BudgetConfig | None = None

    @model_validator(mode="after")
    def _mix(self) -> SelectConfig:
        if self.mix is not None and (any(v < 0 for v in self.mix.values()) or sum(self.mix.values()) <= 0):
            raise ValueError("select.mix needs non-negative shares with a positive sum")
        return self


class StageResources(_Strict):
    """One stage's overrides of the executor block: generation wants GPU nodes, verification many CPU cores,
    so on Slurm they are separate jobs, each with its own partition, time limit and memory."""

    tasks: int | None = Field(default=None, ge=1)
    workers: int | None = Field(default=None, ge=1)  # tasks running at once (Slurm: the array's %limit)
    cpus: int | None = Field(default=None, ge=1)  # per task
    gpus: int | None = Field(default=None, ge=0)  # per task
    mem_gb: int | None = Field(default=None, ge=1)  # per task
    partition: str | None = None  # slurm
    time: str | None = None  # slurm, e.g. "48:00:00"


class SlurmOptions(_Strict):
    """sbatch settings; the node needs only the package and this recipe (written next to the job's logs)."""

    partition: str | None = None  # None: the cluster's default partition
    time: str = "24:00:00"
    qos: str | None = None
    account: str | None = None
    sbatch_args: dict[str, str | int] = {}  # any other #SBATCH --key=value, e.g. {constraint: h100}
    env_command: str | None = None  # run before the task, e.g. "module load cuda; source /shared/venv/bin/activate"
    python: str | None = None  # interpreter on the nodes; default: the submitting one (a shared filesystem)
    max_array_size: int = Field(default=1001, ge=1)  # the cluster's MaxArraySize


class RayOptions(_Strict):
    address: str | None = None  # None: $RAY_ADDRESS, else a local Ray; "auto": the running cluster
    max_retries: int = Field(default=0, ge=0)  # Ray restarts of a dead worker, before datatrove's 3 resubmissions


#: The stages a recipe can address, in pipeline order; ``z1data/stages/__init__.py`` (the registry of stage
#: classes) checks at import that it names the same ones. Kept here so a typo in ``executor.stages`` fails
#: when the recipe loads, before any stage is imported.
STAGE_NAMES = ("source", "dedup", "decontaminate", "generate", "verify", "bucket", "filter", "select")
_EXECUTOR_STAGES = Literal[(*STAGE_NAMES, "version")]  # type: ignore[valid-type]  # "version": Slurm's last job


class ExecutorConfig(_Strict):
    """Where stages run: datatrove's Local, Ray or Slurm executor. It changes speed and placement, never rows,
    so no stage fingerprint includes it: the same recipe gives the same content hash on every kind."""

    kind: Literal["local", "ray", "slurm"] = "local"
    tasks: int = Field(default=1, ge=1)  # per stage, at most ``shards``; source, dedup and select use one
    workers: int = Field(default=1, ge=1)
    cpus: int = Field(default=1, ge=1)  # per task (ray, slurm)
    gpus: int = Field(default=0, ge=0)  # per task (ray, slurm)
    mem_gb: int = Field(default=2, ge=1)  # per task (ray, slurm)
    stages: dict[_EXECUTOR_STAGES, StageResources] = {}  # per-stage overrides; "version" is Slurm's final job
    slurm: SlurmOptions = SlurmOptions()
    ray: RayOptions = RayOptions()


class Recipe(_Strict):
    seed: int = 42
    shards: int = Field(default=4, ge=1)  # problems are hashed into this many shards
    description: str = ""
    executor: ExecutorConfig = ExecutorConfig()
    sources: list[SourceConfig] = Field(min_length=1)
    generate: GenerateConfig
    verify: VerifyConfig = VerifyConfig()
    bucket: BucketConfig
    dedup: DedupConfig | None = None
    decontaminate: DecontaminateConfig | None = None
    filters: FiltersConfig | None = None
    select: SelectConfig | None = None

    # Set by load_recipe, not by the YAML.
    name: Annotated[str, Field(exclude=True)] = "recipe"

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def hash(self) -> str:
        """Hash of the validated recipe (defaults filled in), independent of YAML formatting."""
        blob = json.dumps(self.as_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


# ---------------------------------------------------------------- loading
def recipe_name(path: Path) -> str:
    """``recipes/ablations/x.yaml`` -> ``ablations/x``; a file elsewhere -> its stem."""
    resolved = path.resolve()
    dirs = resolved.parent.parts  # only directories count: ``recipes/sub/recipes.yaml`` is ``sub/recipes``
    if "recipes" in dirs:
        i = len(dirs) - 1 - dirs[::-1].index("recipes")
        return "/".join((*dirs[i + 1 :], resolved.with_suffix("").name))
    return path.stem


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """The recipe at ``path`` through the shared loader (``extends``, ``--set``); errors are ``RecipeError``s."""
    path = Path(path)
    try:
        data = read_config(path, overrides, kind="recipe")
        if "name" in data:
            raise RecipeError(f"{path}: key 'name' is not allowed: the recipe path names the experiment")
        return validate(Recipe, {**data, "name": recipe_name(path)}, path, kind="recipe")
    except RecipeError:
        raise
    except ConfigError as e:  # the same message, as the recipe-specific type callers catch
        raise RecipeError(*e.args) from e.__cause__
