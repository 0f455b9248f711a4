"""A search space as Optuna sees it: define-by-run suggestions, seed points, the sampler.

Parameter names are the dotted config paths verbatim (`model.pooling.kind`): Ray's OptunaSearch
only unflattens `/`, so a trial's Tune config holds the same keys, and `trial_config` applies
them to the base config. Optuna only, no Ray: the Tune driver wires these into OptunaSearch.
"""

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from reid_platform.config.schema import ReidConfig
from reid_platform.config.search import (
    ChoiceDistribution,
    Distribution,
    IntDistribution,
    QuantizedDistribution,
    SearchSpaceConfig,
)
from reid_platform.config.search_check import (
    RejectedSettingsError,
    apply_settings,
    condition_holds,
    condition_order,
    culprit,
)
from reid_platform.errors import ConfigError

DefineByRun = Callable[[optuna.Trial], dict[str, Any] | None]


def _suggest(trial: optuna.Trial, key: str, distribution: Distribution) -> Any:
    if isinstance(distribution, ChoiceDistribution):
        return trial.suggest_categorical(key, distribution.values)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(key, distribution.low, distribution.high, step=distribution.step)
    if isinstance(distribution, QuantizedDistribution):
        return trial.suggest_float(key, distribution.low, distribution.high, step=distribution.q)
    log = distribution.type == "loguniform"
    return trial.suggest_float(key, distribution.low, distribution.high, log=log)


class SpaceSuggester:
    """Optuna define-by-run function: suggests every parameter whose `when` holds.

    Conditions are suggested before the parameters they gate, so a conditional parameter is
    only asked for (and only present in the trial's params) when its condition holds. A class,
    not a closure: Ray's OptunaSearch pickles its space with the searcher state (plain pickle),
    and `Tuner.restore` needs it back.
    """

    def __init__(self, space: SearchSpaceConfig) -> None:
        self.space = space
        self.order = condition_order(space)

    def __call__(self, trial: optuna.Trial) -> dict[str, Any] | None:
        chosen: dict[str, Any] = {}
        for key in self.order:
            distribution = self.space.params[key]
            if condition_holds(distribution, chosen):
                chosen[key] = _suggest(trial, key, distribution)
        # Constants belong in Tune's param_space: returning them here would make Ray ignore
        # `points_to_evaluate` (ray#35319).
        return None


def define_by_run(space: SearchSpaceConfig) -> DefineByRun:
    """The define-by-run function of `space` (picklable); parameter names are dotted paths."""
    return SpaceSuggester(space)


def _as_distribution_value(distribution: Distribution, value: Any) -> Any:
    # Optuna compares enqueued values with its distribution's own type (1 is not 1.0 for a float).
    if isinstance(distribution, ChoiceDistribution) or isinstance(value, bool):
        return value
    if isinstance(distribution, IntDistribution):
        return int(value)
    return float(value)


def seed_points(space: SearchSpaceConfig) -> list[dict[str, Any]]:
    """The space's seed points (for `points_to_evaluate`), in order, numbers typed per parameter."""
    return [
        {key: _as_distribution_value(space.params[key], value) for key, value in point.items()}
        for point in space.seed_points
    ]


def build_sampler(space: SearchSpaceConfig, seed: int) -> optuna.samplers.BaseSampler:
    """TPE (multivariate, grouped for conditional spaces), for one objective or two.

    Not NSGA-II for two: its first generation (50 trials by default) is random, which is most
    or all of a re-id search's budget; TPE handles several objectives (MOTPE) from its
    startup trials on.
    """
    with warnings.catch_warnings():
        # `group=True` is stable in behaviour but still flagged experimental in Optuna 5.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)


def _shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def open_optuna_storage(url: str) -> optuna.storages.RDBStorage:
    """The space's `optuna_storage` database, opened (tables created or checked).

    Raises a ConfigError naming `optuna_storage` when the URL does not parse, its driver is not
    installed, the database cannot be reached, or its schema is from another Optuna version.
    """
    try:
        return optuna.storages.RDBStorage(url)
    except (SQLAlchemyError, ImportError, RuntimeError, optuna.exceptions.OptunaError) as error:
        text = str(error).strip()
        reason = text.splitlines()[0] if text else type(error).__name__
        raise ConfigError(
            f"optuna_storage {_shown_url(url)!r} cannot be opened ({reason})"
        ) from None


def sampled_params(tune_config: Mapping[str, Any], space: SearchSpaceConfig) -> dict[str, Any]:
    """The searched keys present in a trial's Tune config (conditional ones only where sampled)."""
    return {key: tune_config[key] for key in space.params if key in tune_config}


def trial_config(
    base: ReidConfig, space: SearchSpaceConfig, params: Mapping[str, Any]
) -> ReidConfig:
    """`base` + the space's fixed settings + the trial's sampled `params`, validated.

    Raises a ConfigError naming the parameter (or fixed setting) the config refuses.
    """
    settings = {**space.fixed, **params}
    try:
        return apply_settings(base, settings)
    except RejectedSettingsError as error:
        key = culprit(settings, error.path)
        if key is None:
            raise ConfigError(
                f"trial parameters are not accepted by the config ({error})"
            ) from None
        kind = "search parameter" if key in params else "fixed setting"
        raise ConfigError(
            f"{kind} {key}={settings[key]!r} is not accepted by the config ({error})"
        ) from None
