"""Finding a search's parent run (`reid.kind=search`): the newest one that matches."""

from collections.abc import Sequence

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from reid_platform.tracking.layout import KIND_TAG, SEARCH_KIND


def newest_search(
    client: MlflowClient, experiment_ids: Sequence[str], extra_filter: str = ""
) -> Run | None:
    """The most recently started search run in `experiment_ids` that also matches
    `extra_filter` (an MLflow filter clause, e.g. "tags.`reid.run_name` = 's1'"); None
    when there is none."""
    if not experiment_ids:
        return None
    clauses = [f"tags.`{KIND_TAG}` = '{SEARCH_KIND}'", *([extra_filter] if extra_filter else [])]
    runs = client.search_runs(
        list(experiment_ids),
        filter_string=" AND ".join(clauses),
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None
