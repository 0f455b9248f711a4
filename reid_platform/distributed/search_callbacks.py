"""Tune-driver callbacks of a search: closing each trial's MLflow run, and live progress.

Both run in the Tune driver process (the `reid search` command), never in a trial: a trial
that a scheduler stops dies inside `fit()` (platform-facts §0.3), so only the driver can say how
it ended. Tune pickles its callbacks into the experiment (`tuner.pkl`) and a restored search
uses those copies; they therefore hold plain data and module-level functions only.
"""

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from reid_platform.distributed.search_trial import EPOCHS_DONE_KEY, SearchConstants
from reid_platform.distributed.worker import FINAL_KEY
from reid_platform.errors import ReidError
from reid_platform.tracking.search_runs import TrialOutcome, close_trial_run, find_trial_run

logger = logging.getLogger(__name__)

# `module.Class: message`, or Ray's `module.RayTaskError(Class): message`.
_ERROR_PREFIX = re.compile(r"^(?:[\w.]+\.)?(\w+)(?:\((?:[\w.]+\.)?(\w+)\))?: (.*)$")
_USER_ERRORS = frozenset({"ReidError", "ConfigError"})


def trial_outcome(last_result: Mapping[str, Any]) -> TrialOutcome:
    """How a trial that Tune completed ended: its last result was the final epoch's report
    (`completed`), or a scheduler stopped it before (`stopped_early`)."""
    return "completed" if last_result.get(FINAL_KEY) else "stopped_early"


def error_sentence(text: str | None) -> str:
    """The one line that says why a trial failed, from Tune's error text (a remote traceback
    whose last line is `module.Class: message`); the class is kept unless it is ours."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return "the trial failed without an error message"
    match = _ERROR_PREFIX.match(lines[-1])
    if match is None:
        return lines[-1]
    outer, inner, message = match.groups()
    name = inner or outer
    if not name.endswith(("Error", "Exception")):
        return lines[-1]
    return message if name in _USER_ERRORS else f"{name}: {message}"


def _constants(trial: Trial) -> SearchConstants | None:
    try:
        return SearchConstants.from_config(trial.config)
    except (ReidError, TypeError):
        logger.warning("trial %s has no search constants; its MLflow run stays open", trial)
        return None


class TrialRunCloser(Callback):
    """Closes a trial's MLflow child run when Tune ends the trial: `completed` or
    `stopped_early` (FINISHED), `failed` with the error's sentence (FAILED).

    A tracking store that stays down is logged, not raised: the search goes on, and
    `finish_search_run` closes runs left open at the end.
    """

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._close(trial, trial_outcome(trial.last_result or {}), None)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._close(trial, "failed", error_sentence(_error_text(trial)))

    def _close(self, trial: Trial, outcome: TrialOutcome, reason: str | None) -> None:
        constants = _constants(trial)
        if constants is None:
            return
        uri, trial_id = constants.tracking_uri, trial.trial_id
        try:
            run_id = find_trial_run(uri, constants.parent_run_id, trial_id)
            if run_id is None:
                # It failed before opening its run (e.g. its sampled config was refused).
                logger.warning("trial %s %s without an MLflow run: %s", trial_id, outcome, reason)
                return
            close_trial_run(uri, run_id, outcome, reason)
        except ReidError as error:
            logger.warning("could not close the MLflow run of trial %s: %s", trial_id, error)
            return
        logger.info(
            "trial %s %s%s", trial_id, outcome.replace("_", " "), f": {reason}" * bool(reason)
        )


def _error_text(trial: Trial) -> str | None:
    """Tune's text of the trial's error: the driver's own copy first (the one in storage may
    not be synced yet when the error hook runs)."""
    try:
        local = trial.error_file
        if local and Path(local).is_file():
            return Path(local).read_text(encoding="utf-8", errors="replace")
        error = trial.get_error()
    except OSError:
        return None
    return None if error is None else str(error)


@dataclass(frozen=True)
class TrialProgress:
    """One line of the live table: a trial's state, sampled params, epochs done, objective.

    state: pending, running, paused, completed, stopped early, failed.
    """

    trial_id: str
    state: str
    params: dict[str, Any]
    epochs_done: int | None
    objective: float | None


ProgressRenderer = Callable[[Sequence[TrialProgress]], None]
"""Shows the table (the CLI prints it); a module-level function or a picklable object."""


def _state(trial: Trial) -> str:
    if trial.status == Trial.TERMINATED:
        return trial_outcome(trial.last_result or {}).replace("_", " ")
    if trial.status == Trial.ERROR:
        return "failed"
    return str(trial.status).lower()


def trial_progress(trial: Trial, searched: Sequence[str], objective: str) -> TrialProgress:
    """The table line of `trial` (params: the searched paths present in its config)."""
    result = trial.last_result or {}
    done = result.get(EPOCHS_DONE_KEY)
    value = result.get(objective)
    return TrialProgress(
        trial_id=trial.trial_id,
        state=_state(trial),
        params={key: trial.config[key] for key in searched if key in trial.config},
        epochs_done=int(done) if done is not None else None,
        objective=float(value) if value is not None else None,
    )


class SearchProgress(Callback):
    """Hands the trials table to `render` when something changed: right away when a trial
    starts or ends, at most every `min_interval_s` for new results (no flood).

    The table is drawn at the end of Tune's loop step, once Tune has applied the change
    (statuses and results are updated after the hooks run).
    """

    def __init__(
        self,
        *,
        searched: Sequence[str],
        objective: str,
        render: ProgressRenderer,
        min_interval_s: float = 10.0,
    ) -> None:
        self.searched = tuple(searched)
        self.objective = objective
        self.render = render
        self.min_interval_s = min_interval_s
        self._changed = False
        self._state_changed = False
        self._last_shown = 0.0

    def _note(self, *, state: bool) -> None:
        self._changed = True
        self._state_changed = self._state_changed or state

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._note(state=True)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        self._note(state=False)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._note(state=True)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self._note(state=True)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        due = time.monotonic() - self._last_shown >= self.min_interval_s
        if self._state_changed or (self._changed and due):
            self._show(trials)

    def _show(self, trials: list[Trial]) -> None:
        self._changed = self._state_changed = False
        self._last_shown = time.monotonic()
        self.render([trial_progress(t, self.searched, self.objective) for t in trials])
