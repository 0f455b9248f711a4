"""Search-space files (`search_spaces/*.yaml`): distributions over dotted config paths.

```yaml
objectives: [{metric: eval/mAP, mode: max}]     # validation metrics only
num_samples: 8
scheduler: {kind: asha, asha: {grace_period: 2, reduction_factor: 2}}
params:
  model.pooling.kind: {type: choice, values: [avg, max, gem]}
  model.classifier.arcface.margin:
    {type: uniform, low: 0.2, high: 0.6, when: {model.classifier.kind: [arcface]}}
```
"""

from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from reid_platform.config.base import Float, Section, VariantSection
from reid_platform.config.errors import config_path_problem
from reid_platform.config.schema import ReidConfig
from reid_platform.metric_names import SEARCH_METRICS

Scalar = str | int | float | bool


class _Distribution(Section):
    """Common to every distribution: an optional condition on other parameters' choices.

    `when: {path: [values]}` makes the parameter exist only when each named path took one of
    the listed values.
    """

    when: dict[str, tuple[Scalar, ...]] = Field(default_factory=dict)


class ChoiceDistribution(_Distribution):
    type: Literal["choice"]
    values: tuple[Scalar, ...] = Field(min_length=1)


class UniformDistribution(_Distribution):
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
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.low < self.high:
            raise ValueError("low must be smaller than high")
        return self


class QuantizedDistribution(_Distribution):
    type: Literal["quantized"]
    low: Float
    high: Float
    q: Float = Field(gt=0.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if not self.low < self.high:
            raise ValueError("low must be smaller than high")
        return self


Distribution = Annotated[
    ChoiceDistribution | UniformDistribution | IntDistribution | QuantizedDistribution,
    Field(discriminator="type"),
]


class Objective(Section):
    metric: Literal[SEARCH_METRICS] = "eval/mAP"  # type: ignore[valid-type]
    mode: Literal["max", "min"] = "max"


class ASHAConfig(Section):
    """ASHA on the reported epoch: trials stop at grace_period × reduction_factor^k epochs."""

    grace_period: int = Field(1, ge=1)
    reduction_factor: int = Field(2, ge=2)


class SchedulerConfig(VariantSection):
    variant_blocks: ClassVar[tuple[str, ...]] = ("asha",)
    kind: Literal["none", "asha"] = "none"
    asha: ASHAConfig = ASHAConfig()


class TrialResources(Section):
    """Resources of one trial's Ray Train workers, and how many trials run at once."""

    max_concurrent_trials: int = Field(1, ge=1)
    driver_cpus: Float = Field(0.01, gt=0.0)


class SearchSpaceConfig(Section):
    objectives: tuple[Objective, ...] = Field((Objective(),), min_length=1, max_length=2)
    num_samples: int = Field(8, ge=1)
    scheduler: SchedulerConfig = SchedulerConfig()
    resources: TrialResources = TrialResources()
    optuna_storage: str | None = None
    seed_points: tuple[dict[str, Any], ...] = ()
    params: dict[str, Distribution] = Field(min_length=1)

    @model_validator(mode="after")
    def _params_are_config_paths(self) -> Self:
        for key in self.params:
            problem = config_path_problem(ReidConfig, key)
            if problem is not None:
                raise ValueError(f"search parameter {problem}")
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
