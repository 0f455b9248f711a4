"""The root config: one typed section per stage of the pipeline, plus the seed."""

from pydantic import Field

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
