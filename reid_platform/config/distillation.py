"""Knowledge distillation: a teacher checkpoint and the distillation loss terms."""

from pydantic import Field

from reid_platform.config.base import Float, Section


class DistillationConfig(Section):
    """Off unless `enabled`; the teacher comes from a run (`reid promote`) or a weights file."""

    enabled: bool = False
    teacher_run_id: str | None = None
    teacher_weights: str | None = None
    logit_l1_weight: Float = Field(1.0, ge=0.0)
    pkt_weight: Float = Field(1.0, ge=0.0)
    temperature: Float = Field(1.0, gt=0.0)
