"""`reid eval CONFIG --weights PATH | --run RUN_ID`: evaluate a trained model on the test sets."""

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress

from reid_platform.cli.report_tables import metrics_table, public_metrics
from reid_platform.config import ReidConfig, load_config
from reid_platform.data.build import build_data, build_test_loader
from reid_platform.data.records import Split
from reid_platform.evaluation.build import build_evaluator
from reid_platform.evaluation.feature_file import save_features
from reid_platform.evaluation.features import FeatureSet, extract_features
from reid_platform.evaluation.model_evaluation import (
    DsrSettings,
    ModelEvaluation,
    evaluate_feature_sets,
)
from reid_platform.evaluation.report_files import write_report_files
from reid_platform.modeling.model_file import LoadedModel, load_model_file
from reid_platform.runtime import resolve_device


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    command = commands.add_parser(
        "eval", parents=[common], help="evaluate a model file or a run's model on the test sets"
    )
    command.add_argument("config", help="experiment YAML: test data and evaluation settings")
    command.add_argument("overrides", nargs="*", metavar="key=value", help="dotted overrides")
    source = command.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", type=Path, help="model file (model.pt)")
    source.add_argument("--run", metavar="RUN_ID", help="MLflow run whose checkpoints/model.pt")
    command.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    command.add_argument("--aqe", action="store_true", help="average query expansion")
    command.add_argument(
        "--dsr", action="store_true", help="fuse deep spatial reconstruction (weight from val)"
    )
    command.add_argument(
        "--save-features", type=Path, metavar="FILE.npz", help="write features for `reid metrics`"
    )
    command.add_argument(
        "--report", type=Path, metavar="DIR", help="write ROC, histogram and rank-list figures"
    )
    command.add_argument(
        "--json", action="store_true", help="print one JSON object: metrics per test dataset"
    )
    command.set_defaults(handler=eval_command)


def _flag_overrides(args: argparse.Namespace) -> list[str]:
    flags = {"rerank": args.rerank, "query_expansion": args.aqe, "dsr": args.dsr}
    return [f"evaluation.{name}.enabled=true" for name, on in flags.items() if on]


def _load_model(args: argparse.Namespace) -> LoadedModel:
    if args.weights is not None:
        return load_model_file(args.weights)
    from reid_platform.tracking.run_artifacts import download_run_model  # mlflow: import late

    with tempfile.TemporaryDirectory() as scratch:
        return load_model_file(download_run_model(args.run, args.tracking_uri, Path(scratch)))


def _extractor(config: ReidConfig, loaded: LoadedModel, device: str, progress: Progress) -> Any:
    spatial = config.evaluation.dsr.enabled

    def extract(split: Split) -> FeatureSet:
        loader = build_test_loader(config.data, loaded.config.input, split.records)
        task = progress.add_task(f"features: {split.name}", total=len(loader))
        features = extract_features(
            loaded.model,
            loader,
            device=device,
            flip=config.evaluation.flip_tta,
            spatial=spatial,
            progress=lambda done, _total: progress.update(task, completed=done),
        )
        progress.remove_task(task)
        return features

    return extract


def _dsr_settings(config: ReidConfig) -> DsrSettings | None:
    dsr = config.evaluation.dsr
    return DsrSettings(dsr.weights, dsr.method, dsr.top_k) if dsr.enabled else None


def _save_path(path: Path, dataset: str, many: bool) -> Path:
    return path.with_name(f"{path.stem}_{dataset}{path.suffix}") if many else path


def _report_files(config: ReidConfig, job: "_DatasetJob") -> str:
    written = write_report_files(
        job.result.report,
        job.query,
        job.gallery,
        job.folder,
        rank_list_queries=config.evaluation.rank_list_queries,
    )
    return f"{len(written)} figures and tables written to {job.folder}"


@dataclass(frozen=True)
class _DatasetJob:
    name: str
    query: FeatureSet
    gallery: FeatureSet
    result: ModelEvaluation
    folder: Path


def eval_command(args: argparse.Namespace) -> int:
    config = load_config(args.config, [*args.overrides, *_flag_overrides(args)])
    loaded = _load_model(args)
    device = resolve_device(config.training.device)
    loaded.model.to(device)
    data = build_data(config.data)
    evaluator = build_evaluator(config.evaluation, device=device)
    console = Console(stderr=args.json)  # stdout stays one JSON object when --json is given
    many = len(data.test) > 1
    results: dict[str, dict[str, float | int]] = {}
    with Progress(console=console, transient=True) as progress:
        extract = _extractor(config, loaded, device, progress)
        validation = (
            (extract(data.val_query), extract(data.val_gallery))
            if config.evaluation.dsr.enabled
            else None
        )
        for index, splits in enumerate(data.test):
            name = splits.name if splits.name not in results else f"{splits.name}_{index}"
            query, gallery = extract(splits.query), extract(splits.gallery)
            result = evaluate_feature_sets(
                evaluator, query, gallery, dsr=_dsr_settings(config), validation=validation
            )
            folder = (args.report / name if many else args.report) if args.report else Path()
            job = _DatasetJob(name, query, gallery, result, folder)
            results[name] = public_metrics(result.report)
            console.print(metrics_table(result.report, title=f"{name}: {result.summary}"))
            if args.save_features is not None:
                saved = save_features(_save_path(args.save_features, name, many), query, gallery)
                console.print(f"features saved to {saved}")
            if args.report is not None:
                console.print(_report_files(config, job))
    if args.json:
        print(json.dumps(results))  # noqa: T201 - machine-readable output
    return 0
