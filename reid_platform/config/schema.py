"""The root config: one typed section per stage of the pipeline, plus the seed."""

from typing import Self

from pydantic import Field, model_validator

from reid_platform.config.base import Section
from reid_platform.config.data import DataConfig
from reid_platform.config.distillation import DistillationConfig
from reid_platform.config.distributed import DistributedConfig
from reid_platform.config.evaluation import EvaluationConfig
from reid_platform.config.export import ExportConfig
from reid_platform.config.input import InputConfig
from reid_platform.config.losses import LossesConfig
from reid_platform.config.model import ModelConfig
from reid_platform.config.solver import SolverConfig
from reid_platform.config.tracking import TrackingConfig
from reid_platform.config.training import TrainingConfig


class ReidConfig(Section):
    """A complete experiment. Every key is reachable as a dotted path (`solver.max_epochs`)."""

    seed: int = Field(ge=0)
    data: DataConfig
    input: InputConfig = InputConfig()
    model: ModelConfig = ModelConfig()
    losses: LossesConfig = LossesConfig()
    solver: SolverConfig = SolverConfig()
    training: TrainingConfig = TrainingConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    export: ExportConfig = ExportConfig()
    tracking: TrackingConfig = TrackingConfig()
    distributed: DistributedConfig = DistributedConfig()
    distillation: DistillationConfig = DistillationConfig()

    @model_validator(mode="after")
    def _distillation_keeps_reid_losses(self) -> Self:
        # FastReID's maintainer (fast-reid#422): without the student's own re-id loss,
        # distillation trains poorly; Eq. 10 always includes it.
        losses = self.losses
        terms = (
            losses.cross_entropy,
            losses.triplet,
            losses.pairwise_circle,
            losses.pairwise_cosface,
        )
        if self.distillation.enabled and not any(t.enabled and t.weight > 0 for t in terms):
            raise ValueError(
                "distillation keeps the student's own re-id losses (Eq. 10: L_reid + w·L_logit "
                "+ α·L_PKT): enable one of losses.* with a weight above 0"
            )
        return self
