"""Search-space files (`search_spaces/*.yaml`): distributions over dotted config paths.

```yaml
objectives: [{metric: eval/mAP, mode: max}]     # validation metrics only
num_samples: 8
scheduler: {kind: asha, asha: {grace_period: 2, reduction_factor: 2}}
fixed: {solver.max_epochs: 4}                    # applied to every trial
params:
  model.pooling.kind: {type: choice, values: [avg, max, gem]}
  model.classifier.arcface.margin:
    {type: uniform, low: 0.2, high: 0.6, when: {model.classifier.kind: [arcface]}}
seed_points:                                     # evaluated first, in order
  - {model.pooling.kind: gem, model.classifier.kind: linear}
```

This module checks the file on its own; `search_check.check_search_space` checks it against
the experiment config it will search over.
"""

import json
import math
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from reid_platform.config.base import Float, Section, VariantSection
from reid_platform.config.errors import config_path_problem, describe_validation_error
from reid_platform.config.registry import did_you_mean
from reid_platform.config.schema import ReidConfig
from reid_platform.errors import ConfigError
from reid_platform.metric_names import EXPORT_PREFIX, SEARCH_METRICS, TEST_PREFIX

Scalar = str | int | float | bool


def same_value(left: Any, right: Any) -> bool:
    """Equality that keeps `true` apart from `1` (YAML choices mix bools and numbers)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return bool(left == right)


def choice_matches(value: Any, allowed: tuple[Scalar, ...]) -> bool:
    """Whether `value` is one of `allowed` (a `when` list or a choice's values)."""
    return any(same_value(value, candidate) for candidate in allowed)


def on_grid(value: float, low: float, step: float) -> bool:
    """Whether `value` is `low + k·step` for a whole k (to float rounding)."""
    steps = (value - low) / step
    return math.isclose(steps, round(steps), rel_tol=0.0, abs_tol=1e-6)


class _Distribution(Section):
    """Common to every distribution: an optional condition on other parameters' choices.

    `when: {path: [values]}` makes the parameter exist only when each named path took one of
    the listed values.
    """

    when: dict[str, tuple[Scalar, ...]] = Field(default_factory=dict)


class ChoiceDistribution(_Distribution):
    type: Literal["choice"]
    values: tuple[Scalar, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        for index, value in enumerate(self.values):
            if choice_matches(value, self.values[:index]):
                raise ValueError(f"choice {value!r} is listed twice")
        return self


class UniformDistribution(_Distribution):
    """Uniform over [low, high]; `loguniform` is uniform in log space (low > 0)."""

    type: Literal["uniform", "loguniform"]
    low: Float
    high: Float

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.low < self.high:
            raise ValueError("low must be smaller than high")
        if self.type == "loguniform" and self.low <= 0:
            raise ValueError("loguniform needs low > 0")
        return self


class IntDistribution(_Distribution):
    """Whole numbers low, low + step, ..., high."""

    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.low < self.high:
            raise ValueError("low must be smaller than high")
        # Optuna would silently move `high` down to the grid; say so instead.
        if (self.high - self.low) % self.step:
            raise ValueError("high - low must be a multiple of step")
        return self


class QuantizedDistribution(_Distribution):
    """Floats low, low + q, ..., high."""

    type: Literal["quantized"]
    low: Float
    high: Float
    q: Float = Field(gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.low < self.high:
            raise ValueError("low must be smaller than high")
        if not on_grid(self.high, self.low, self.q):
            raise ValueError("high - low must be a multiple of q")
        return self


Distribution = Annotated[
    ChoiceDistribution | UniformDistribution | IntDistribution | QuantizedDistribution,
    Field(discriminator="type"),
]


def contains(distribution: Distribution, value: Any) -> bool:
    """Whether `distribution` can produce `value` (a seed point's value, a Tune config's)."""
    if isinstance(distribution, ChoiceDistribution):
        return choice_matches(value, distribution.values)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(distribution, IntDistribution):
        return (
            isinstance(value, int)
            and distribution.low <= value <= distribution.high
            and (value - distribution.low) % distribution.step == 0
        )
    if isinstance(distribution, QuantizedDistribution):
        # A grid point is low + k·q in floats, so the top one may overshoot high by a rounding.
        slack = 1e-9 * distribution.q
        inside = distribution.low - slack <= value <= distribution.high + slack
        return inside and on_grid(value, distribution.low, distribution.q)
    return distribution.low <= value <= distribution.high


class Objective(Section):
    metric: Literal[SEARCH_METRICS] = "eval/mAP"  # type: ignore[valid-type]
    mode: Literal["max", "min"] = "max"

    @field_validator("metric", mode="before")
    @classmethod
    def _not_a_test_metric(cls, metric: Any) -> Any:
        # Tuning on the test split would report an optimistic test score; say why it is refused.
        if isinstance(metric, str) and metric.startswith(TEST_PREFIX):
            raise ValueError(
                f"{metric!r} is a test-split metric; a search objective must be a validation "
                "metric (eval/*), model/params or an exported-model speed (export/*)"
            )
        return metric


class ASHAConfig(Section):
    """ASHA on the reported epoch: trials stop at grace_period × reduction_factor^k epochs."""

    grace_period: int = Field(1, ge=1)
    reduction_factor: int = Field(2, ge=2)


class SchedulerConfig(VariantSection):
    variant_blocks: ClassVar[tuple[str, ...]] = ("asha",)
    kind: Literal["none", "asha"] = "none"
    asha: ASHAConfig = ASHAConfig()


class TrialResources(Section):
    """Resources of one trial's Ray Tune driver, and how many trials run at once.

    The Train workers' resources come from each trial's `distributed` config section.
    """

    max_concurrent_trials: int = Field(1, ge=1)
    driver_cpus: Float = Field(0.01, gt=0.0)


class SearchSpaceConfig(Section):
    """A search: objectives, budget, scheduler, resources, fixed settings and distributions.

    `fixed` maps dotted config paths to values set in every trial (e.g. fewer epochs);
    `study_name` names the Optuna study (default: the search name); `seed_points` are
    evaluated first, in order (params they leave out are sampled).
    """

    objectives: tuple[Objective, ...] = Field((Objective(),), min_length=1, max_length=2)
    num_samples: int = Field(8, ge=1)
    scheduler: SchedulerConfig = SchedulerConfig()
    resources: TrialResources = TrialResources()
    optuna_storage: str | None = None
    study_name: str | None = Field(None, min_length=1)
    fixed: dict[str, Any] = Field(default_factory=dict)
    seed_points: tuple[dict[str, Any], ...] = ()
    params: dict[str, Distribution] = Field(min_length=1)

    @model_validator(mode="after")
    def _params_are_config_paths(self) -> Self:
        for key in self.params:
            problem = config_path_problem(ReidConfig, key)
            if problem is not None:
                raise ValueError(f"search parameter {problem}")
        for key in self.fixed:
            problem = config_path_problem(ReidConfig, key)
            if problem is not None:
                raise ValueError(f"fixed setting {problem}")
            if key in self.params:
                raise ValueError(f"`{key}` is both fixed and searched")
        return self

    @model_validator(mode="after")
    def _conditions_name_params(self) -> Self:
        for key, distribution in self.params.items():
            for condition in distribution.when:
                if condition not in self.params:
                    raise ValueError(
                        f"params.{key}.when names {condition!r}, which is not searched"
                    )
        return self

    @model_validator(mode="after")
    def _objectives_fit_scheduler(self) -> Self:
        metrics = [objective.metric for objective in self.objectives]
        if len(set(metrics)) != len(metrics):
            raise ValueError(f"objective {metrics[0]!r} is listed twice")
        # ASHA compares trials on one number; a Pareto search has no single ranking to cut.
        if self.scheduler.kind == "asha" and len(self.objectives) > 1:
            raise ValueError("scheduler asha needs a single objective (this space names two)")
        # export/* is measured once, after the last epoch: ASHA would have nothing to cut on.
        exported = [metric for metric in metrics if metric.startswith(EXPORT_PREFIX)]
        if self.scheduler.kind == "asha" and exported:
            raise ValueError(
                f"scheduler asha needs an objective reported every epoch, but {exported[0]} is "
                "measured once, when a trial's training ends (use scheduler kind none)"
            )
        return self


SEARCH_SPACE_SOURCE = "search space"
_DISTRIBUTION_CLASSES: dict[str, type[Section]] = {
    "choice": ChoiceDistribution,
    "uniform": UniformDistribution,
    "loguniform": UniformDistribution,
    "int": IntDistribution,
    "quantized": QuantizedDistribution,
}


def _without_union_tag(sentence: str, loc: tuple[int | str, ...]) -> str:
    """Drops the union tag from a parameter key (`params.k.choice.low` → `params.k.low`)."""
    if len(loc) > 2 and loc[0] == "params" and loc[2] in _DISTRIBUTION_CLASSES:
        tagged = ".".join(str(part) for part in loc)
        plain = ".".join(str(part) for part in (*loc[:2], *loc[3:]))
        sentence = sentence.replace(f"`{tagged}`", f"`{plain}`")
        if len(loc) == 4 and " (valid: )" in sentence:
            # The generic wording cannot see through the tagged union to the valid keys.
            fields = list(_DISTRIBUTION_CLASSES[str(loc[2])].model_fields)
            sentence = sentence.replace(" (valid: )", did_you_mean(str(loc[3]), fields), 1)
    return sentence


def read_search_space(raw: Any, source: str = SEARCH_SPACE_SOURCE) -> SearchSpaceConfig:
    """Validate the mapping of a search-space file; ConfigError names `source` and the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must hold a mapping of keys, not {type(raw).__name__}")
    try:
        document = json.dumps(raw)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: holds a value that is not plain data ({error})") from None
    try:
        # JSON mode, as for configs: YAML lists fill tuples, while "3" is still not an int.
        return SearchSpaceConfig.model_validate_json(document, strict=True)
    except ValidationError as error:
        first = error.errors()[0]
        if not first["loc"] and first["type"] == "value_error":
            # A whole-space check (its message names the key itself).
            sentence = str(first["msg"]).removeprefix("Value error, ")
        else:
            sentence = describe_validation_error(error, SearchSpaceConfig).replace(
                "config key", "key", 1
            )
            sentence = _without_union_tag(sentence, tuple(first["loc"]))
        raise ConfigError(f"{source}: {sentence}") from None


def load_search_space(path: str | Path) -> SearchSpaceConfig:
    """Read and validate a search-space YAML file (safe_load)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"search space file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"search space file {path} is not valid YAML{where}") from None
    return read_search_space(raw, source=f"search space {path}")
