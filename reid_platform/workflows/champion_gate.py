"""`reid promote --gate`: may the student take the alias from the version that holds it?

The holder is evaluated now, on the student's validation split (the same images), with its own
input size and evaluation settings, and compared with the student's final validation mAP. A
recorded figure would do only if both were measured on the same split, which a registry tag
cannot show; measuring again costs one validation pass.
"""

from collections.abc import Callable
from pathlib import Path

from reid_platform import metric_names
from reid_platform.config import ReidConfig
from reid_platform.data.build import build_data
from reid_platform.errors import ReidError
from reid_platform.modeling.model_file import load_model_file
from reid_platform.tracking.promotion import AliasHolder
from reid_platform.tracking.run_artifacts import download_run_model
from reid_platform.training.validation import TrainingEvaluator
from reid_platform.workflows.teacher_check import evaluation_device


def champion_gate(
    config: ReidConfig,
    student_map: float,
    *,
    alias: str,
    tracking_uri: str,
    scratch: Path,
    say: Callable[[str], None],
) -> Callable[[AliasHolder], bool]:
    """`may_take(holder)`: whether `student_map` (the student's validation mAP under `config`)
    is at least the holder's, measured on `config`'s validation split."""

    def may_take(holder: AliasHolder) -> bool:
        if holder.run_id is None:
            raise ReidError(
                f"{alias} version {holder.version} names no run, so the gate cannot evaluate "
                "it; promote without --gate"
            )
        folder = scratch / f"holder-{holder.version}"
        loaded = load_model_file(download_run_model(holder.run_id, tracking_uri, folder))
        on_our_data = loaded.config.model_copy(update={"data": config.data})
        evaluator = TrainingEvaluator(
            on_our_data, build_data(config.data), device=evaluation_device()
        )
        held = evaluator.validate(loaded.model.to(evaluator.device)).metrics[metric_names.MAP]
        taken = student_map >= held
        say(
            f"gate: student validation mAP {student_map:.4f}, {alias} version {holder.version} "
            f"{held:.4f} on the same validation split: the student "
            f"{'takes' if taken else 'does not take'} {alias}"
        )
        return taken

    return may_take
