"""Knowledge distillation (FastReID paper §6, Eq. 10): `L = L_reid + w_logit·L_logit + α·L_PKT`.

`L_reid` is the student's own `losses.*` and always stays on. The teacher is a model file: the
`checkpoints/model.pt` of an MLflow run (`teacher_run_id`, set by `reid promote`) or a local
file (`teacher_weights`). It is rebuilt from the config stored in that file, never from this one.

Default weights, and why (measured with `tests/benchmarks/distill_gain.py`, README
"Promotion"):
- `logit.weight = 1`: the gradient of the mean-L1 term with respect to one sample's class
  scores has L1 norm exactly 1/B, whatever the class count or the classifier scale, the same
  order as cross-entropy's (≤ 2/B); so weight 1 balances them for 48 or 751 classes, linear or
  s = 64 cosine heads. On the quickstart it starts at 0.9 against cross-entropy's 3.8.
- `pkt.weight = 100`: the shifted cosine kernel is flat (every entry between ½ and 1), so
  PKT's KL per anchor is small: 0.053 for an untrained quickstart student against a trained
  ResNet-34 at batch 32, 0 for a perfect one. ×100 makes it 5.3 at the start, the order of
  cross-entropy (3.8) and triplet (4.5), the calibration RepDistiller uses. The 300 estimated
  from synthetic features at batch 64 gave 16 here, four times cross-entropy, and the same
  gain (validation mAP +2.4 against +2.2 points, 3 seeds); 1, the old default, made PKT ≈ 0.05:
  off in all but name.
"""

from typing import ClassVar, Literal, Self

from pydantic import Field, model_validator

from reid_platform.config.base import Float, Section, VariantSection


class SymmetricKLOptions(Section):
    """FastReID's "JS-div": (KL(p_t‖p_s) + KL(p_s‖p_t)) / 2 at `temperature`, × T²."""

    temperature: Float = Field(16.0, gt=0.0)


class LogitDistillationConfig(VariantSection):
    """The logit term on the margin-free class scores (`ModelOutput.class_scores`).

    `l1` is the paper's Eq. 8 (mean over batch × classes); `jsdiv` FastReID's shipped variant,
    for reproducing FastDistill; `none` turns the term off (PKT alone then needs no shared
    classes with the teacher).
    """

    variant_blocks: ClassVar[tuple[str, ...]] = ("jsdiv",)
    kind: Literal["l1", "jsdiv", "none"] = "l1"
    weight: Float = Field(1.0, ge=0.0)
    jsdiv: SymmetricKLOptions = SymmetricKLOptions()

    @property
    def active(self) -> bool:
        return self.kind != "none" and self.weight > 0


class PKTConfig(Section):
    """Probabilistic knowledge transfer (Eq. 9 as corrected in the README) on the retrieval
    embeddings; `weight` is α of Eq. 10, 0 turns it off."""

    weight: Float = Field(100.0, ge=0.0)

    @property
    def active(self) -> bool:
        return self.weight > 0


class DistillationConfig(Section):
    """Off unless `enabled`; the teacher is a run's model file or a local one (not both).

    teacher_mode: `eval` (default: BN running statistics frozen, the teacher's state never
        changes) or `train` (FastReID's Distiller: BN uses batch statistics and updates the
        teacher's running statistics; its weights still never change).
    student_init_run_id: start the student from that run's `checkpoints/model.pt` (its model
        section must equal this config's) instead of `model.backbone.pretrained`.
    """

    enabled: bool = False
    teacher_run_id: str | None = Field(None, min_length=1)
    teacher_weights: str | None = Field(None, min_length=1)
    teacher_mode: Literal["eval", "train"] = "eval"
    student_init_run_id: str | None = Field(None, min_length=1)
    logit: LogitDistillationConfig = LogitDistillationConfig()
    pkt: PKTConfig = PKTConfig()

    @model_validator(mode="after")
    def _one_teacher(self) -> Self:
        if self.teacher_run_id is not None and self.teacher_weights is not None:
            raise ValueError("give either teacher_run_id or teacher_weights, not both")
        if self.enabled and not (self.logit.active or self.pkt.active):
            raise ValueError(
                "distillation is enabled but both of its terms are off "
                "(logit.kind none or weight 0, and pkt.weight 0)"
            )
        return self
