"""MLflow naming for runs of this config (the tracking URI is a command-line setting)."""

from pydantic import Field

from reid_platform.config.base import Section


class TrackingConfig(Section):
    """`run_name` identifies a training run: relaunching the same name resumes it."""

    experiment: str = Field("reid", min_length=1)
    run_name: str | None = None
    registered_model: str = Field("reid-model", min_length=1)
