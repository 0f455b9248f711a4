"""The search figures: hand-checked running best and order, importances, valid PNG files."""

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from reid_platform.tracking.search_figures import (
    HISTORY_FIGURE,
    IMPORTANCE_FIGURE,
    best_so_far,
    completion_order,
    param_importances,
    write_search_figures,
)
from reid_platform.tracking.trial_table import TrialRow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _row(
    trial_id: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    *,
    status: str = "completed",
    end: int | None = None,
) -> TrialRow:
    return TrialRow(
        trial_id=trial_id,
        run_id=f"run-{trial_id}",
        run_name=trial_id,
        status="FINISHED",
        trial_status=status,
        params=params,
        metrics=metrics,
        epoch=3,
        start_time=0,
        end_time=end,
    )


def test_best_so_far_by_hand() -> None:
    values = [0.3, 0.1, 0.5, 0.4, 0.7]
    assert best_so_far(values, "max") == [0.3, 0.3, 0.5, 0.5, 0.7]
    assert best_so_far(values, "min") == [0.3, 0.1, 0.1, 0.1, 0.1]
    assert best_so_far([], "max") == []


def test_completion_order_uses_end_time_then_unfinished_last() -> None:
    rows = [_row("a", {}, {}, end=30), _row("b", {}, {}, end=None), _row("c", {}, {}, end=10)]
    assert [row.trial_id for row in completion_order(rows)] == ["c", "a", "b"]


def _dependent_rows(count: int) -> list[TrialRow]:
    """mAP depends on `pooling` only; `lr` is noise; `margin` exists for arcface only."""
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        pooling = ["avg", "max", "gem"][index % 3]
        params: dict[str, Any] = {"pooling": pooling, "lr": float(rng.uniform(1e-4, 1e-2))}
        if index % 2:
            params["margin"] = 0.3
        value = {"avg": 0.2, "max": 0.5, "gem": 0.8}[pooling]
        rows.append(_row(f"t{index}", params, {"eval/mAP": value}, end=index))
    return rows


def test_importances_find_the_parameter_that_matters() -> None:
    importances = param_importances(_dependent_rows(18), "eval/mAP", "max")
    # margin is absent from half the trials: not assessable, left out.
    assert set(importances) == {"pooling", "lr"}
    assert sum(importances.values()) == pytest.approx(1.0)
    assert importances["pooling"] > 0.8 > importances["lr"]


def test_importances_need_two_finished_trials_and_a_varying_param() -> None:
    rows = _dependent_rows(6)
    one = [rows[0], *(_row(r.trial_id, r.params, r.metrics, status="failed") for r in rows[1:])]
    assert param_importances(one, "eval/mAP", "max") == {}
    constant = [_row(r.trial_id, {"pooling": "avg"}, r.metrics) for r in rows]
    assert param_importances(constant, "eval/mAP", "max") == {}
    assert param_importances(rows, "eval/rank1", "max") == {}  # nobody holds the metric


def _png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.load()
        pixels = np.asarray(image.convert("L"))
        assert pixels.min() < pixels.max()  # something is drawn
        return image.size


def test_write_search_figures_writes_valid_pngs(tmp_path: Path) -> None:
    rows = _dependent_rows(9)
    written = write_search_figures(rows, [("eval/mAP", "max")], tmp_path / "figs")
    assert written == [tmp_path / "figs" / HISTORY_FIGURE, tmp_path / "figs" / IMPORTANCE_FIGURE]
    assert _png_size(written[0]) == (640, 320)
    width, height = _png_size(written[1])
    assert width == 640 and height > 100
    # Two objectives: one history panel each.
    two = [_row(r.trial_id, r.params, {**r.metrics, "model/params": 5.0}) for r in rows]
    written = write_search_figures(two, [("eval/mAP", "max"), ("model/params", "min")], tmp_path)
    assert _png_size(written[0]) == (640, 640)


def test_figures_without_enough_data_are_skipped_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    single = [_row("only", {"pooling": "avg"}, {"eval/mAP": 0.4}, end=1)]
    assert write_search_figures(single, [("eval/mAP", "max")], tmp_path) == [
        tmp_path / HISTORY_FIGURE
    ]
    assert "parameter importances need 2 finished trials" in caplog.text
    failed = [_row("f", {"pooling": "avg"}, {"eval/mAP": 0.4}, status="failed")]
    assert write_search_figures(failed, [("eval/mAP", "max")], tmp_path / "none") == []
    assert "no optimisation history" in caplog.text
