"""`reid metrics FILE.npz`: metrics of features or a distance matrix extracted elsewhere."""

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from reid_platform.cli.report_tables import metrics_table, public_metrics
from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import DistanceMetric
from reid_platform.evaluation.evaluator import (
    Evaluator,
    QueryExpansionSettings,
    RerankSettings,
)
from reid_platform.evaluation.feature_file import load_evaluation_input

METRIC_CHOICES: dict[str, DistanceMetric] = {
    "cosine": "cosine",
    "euclidean": "euclidean",
    "sqeuclidean": "euclidean_squared",
}

_RERANK = RerankSettings()
_EXPANSION = QueryExpansionSettings()


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "metrics",
        parents=[common],
        help="CMC, mAP, mINP and TAR@FAR of saved features or a saved distance matrix",
    )
    command.add_argument(
        "file", type=Path, help=".npz with q_feats/g_feats or distmat, q/g_pids, q/g_camids"
    )
    command.add_argument(
        "--metric", choices=tuple(METRIC_CHOICES), default="cosine", help="for features"
    )
    command.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    command.add_argument("--k1", type=int, default=_RERANK.k1)
    command.add_argument("--k2", type=int, default=_RERANK.k2)
    command.add_argument("--lambda-value", type=float, default=_RERANK.lambda_value)
    command.add_argument("--aqe", action="store_true", help="average query expansion")
    command.add_argument("--qe-times", type=int, default=_EXPANSION.times)
    command.add_argument("--qe-k", type=int, default=_EXPANSION.k)
    command.add_argument("--qe-alpha", type=float, default=_EXPANSION.alpha)
    command.add_argument("--max-rank", type=int, default=50)
    command.add_argument(
        "--protocol", choices=("market1501", "cuhk03_single_shot"), default="market1501"
    )
    command.add_argument("--json", action="store_true", help="print one JSON object")
    command.set_defaults(handler=metrics_command)


def _evaluator(args: argparse.Namespace) -> Evaluator:
    rerank = RerankSettings(args.k1, args.k2, args.lambda_value) if args.rerank else None
    expansion = (
        QueryExpansionSettings(args.qe_times, args.qe_k, args.qe_alpha) if args.aqe else None
    )
    return Evaluator(
        metric=METRIC_CHOICES[args.metric],
        max_rank=args.max_rank,
        protocol=args.protocol,
        rerank=rerank,
        query_expansion=expansion,
    )


def metrics_command(args: argparse.Namespace) -> int:
    saved = load_evaluation_input(args.file)
    evaluator = _evaluator(args)
    ids = (saved.q_pids, saved.g_pids, saved.q_camids, saved.g_camids)
    if saved.q_feats is not None and saved.g_feats is not None:
        distmat = evaluator.distances(saved.q_feats, saved.g_feats)
    else:
        if args.rerank or args.aqe:
            flag = "--rerank" if args.rerank else "--aqe"
            raise EvaluationError(
                f"{flag} needs features, but {args.file} holds only a distance matrix"
            )
        assert saved.distmat is not None  # load_evaluation_input returns one or the other
        distmat = saved.distmat
    report = evaluator.evaluate_distances(distmat, *ids)
    if args.json:
        print(json.dumps(public_metrics(report)))  # noqa: T201 - machine-readable output
    else:
        Console().print(metrics_table(report, title=str(args.file)))
    return 0
