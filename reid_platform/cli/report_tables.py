"""How evaluation results are shown: a rich table, or JSON with the metric names unprefixed."""

from rich.table import Table

from reid_platform.evaluation.evaluator import EvaluationReport

_PREFIX = "eval/"


def public_metrics(report: EvaluationReport) -> dict[str, float | int]:
    """`{"rank1": …, "mAP": …, "tar_at_far_1e-4": …, "num_valid_queries": n}`, fractions."""
    values: dict[str, float | int] = {
        name.removeprefix(_PREFIX): float(value) for name, value in report.metrics().items()
    }
    values["num_valid_queries"] = report.ranking.num_valid_queries
    return values


def metrics_table(report: EvaluationReport, *, title: str) -> Table:
    """Metrics as percentages, with the count of queries evaluated and skipped."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in report.metrics().items():
        table.add_row(name.removeprefix(_PREFIX), f"{100.0 * value:.2f}%")
    ranking = report.ranking
    table.add_row("queries evaluated", str(ranking.num_valid_queries))
    if ranking.num_skipped_queries:
        table.add_row(
            "queries skipped (no match in another camera)", str(ranking.num_skipped_queries)
        )
    return table
