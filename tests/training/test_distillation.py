"""Distillation in the training core: the teacher (frozen, never a part of the student), the
terms it adds to each step, the checks that refuse a teacher that cannot teach, and the student
started from another run's weights. A tiny synthetic benchmark and timm's 0.4 M test ResNet."""

import math
from itertools import islice
from pathlib import Path

import onnx
import pytest
import torch
from onnx import numpy_helper

from reid_platform import metric_names
from reid_platform.config import ReidConfig, load_config
from reid_platform.data.build import build_data, build_train_loader
from reid_platform.data.splits import label_map_digest
from reid_platform.errors import ConfigError, ReidError
from reid_platform.losses.build import build_loss
from reid_platform.modeling.build import build_model
from reid_platform.modeling.model_file import load_model_file, save_model_file
from reid_platform.training.build import build_solver
from reid_platform.training.distiller import build_distiller
from reid_platform.training.epoch import TrainingStep
from reid_platform.training.loop import (
    DistillationFiles,
    EpochEnd,
    TrainingHooks,
    WorkerPlacement,
    train,
)
from reid_platform.training.teacher import (
    check_teacher_fits,
    load_student_init,
    load_teacher,
)

from .conftest import QUICKSTART, tiny_training_config

pytestmark = pytest.mark.usefixtures("one_thread")

CPU = torch.device("cpu")
ONE_EPOCH = ["solver.max_epochs=1", "solver.warmup.iters=2", "training.eval_period=1"]


def tiny(data_root: Path, *overrides: str) -> ReidConfig:
    return tiny_training_config(data_root, *ONE_EPOCH, *overrides)


def student(data_root: Path, teacher: Path, *overrides: str) -> ReidConfig:
    return tiny(
        data_root,
        "distillation.enabled=true",
        f"distillation.teacher_weights={teacher}",
        # The student's own neck: a 24-d embedding against the teacher's 512-d (PKT is
        # dimension-free).
        "model.neck.kind=linear",
        "model.neck.linear.dim=24",
        *overrides,
    )


class Recording(TrainingHooks):
    def __init__(self) -> None:
        self.epochs: list[EpochEnd] = []

    def on_epoch_end(self, end: EpochEnd) -> None:
        self.epochs.append(end)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("distill") / "synthetic"


@pytest.fixture(scope="module")
def teacher_file(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A teacher trained for one epoch: the model file of its final checkpoint."""
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("teacher")
    outcome = train(
        tiny(data_root), placement=WorkerPlacement(), hooks=TrainingHooks(), work_dir=work
    )
    assert outcome.final_checkpoint_dir is not None
    return outcome.final_checkpoint_dir / "model.pt"


def _step(config: ReidConfig) -> tuple[TrainingStep, torch.utils.data.DataLoader]:
    """A training step of `config`'s student with its distiller, and its training loader."""
    data = build_data(config.data)
    loader = build_train_loader(config.data, config.input, data.train, seed=config.seed)
    model = build_model(config.model, config.input, num_classes=data.num_classes)
    solver = build_solver(config.solver, model, iters_per_epoch=len(loader), device=CPU)
    distiller = build_distiller(
        config,
        DistillationFiles(),
        num_classes=data.num_classes,
        label_map=label_map_digest(data.train),
        precision=solver.precision,
        device=CPU,
    )
    step = TrainingStep(
        model=model,
        bare=model,
        objective=build_loss(config.losses),
        solver=solver,
        device=CPU,
        channels_last=False,
        base_lr=config.solver.optimizer.base_lr,
        distiller=distiller,
    )
    return step, loader


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in module.state_dict().items()}


def test_eval_mode_teacher_state_never_changes_and_gets_no_gradient(
    data_root: Path, teacher_file: Path
) -> None:
    step, loader = _step(student(data_root, teacher_file))
    assert step.distiller is not None
    teacher = step.distiller.teacher.model
    before, student_before = _snapshot(teacher), _snapshot(step.bare)
    for iteration, batch in enumerate(islice(loader, 3)):
        values, names = step.run(batch, iteration)
        assert names == ["cross_entropy", "triplet", "distill_logit", "distill_pkt"]
        assert torch.isfinite(values).all() and (values[2:] > 0).all()
    after = teacher.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), "weights and BN statistics"
    assert not teacher.training
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    changed = [
        k for k, v in step.bare.state_dict().items() if not torch.equal(v, student_before[k])
    ]
    assert changed, "the student trained"
    # The teacher is no part of the student: not a submodule, not in the optimizer.
    teacher_ids = {id(p) for p in teacher.parameters()}
    assert not teacher_ids & {id(p) for p in step.bare.parameters()}
    optimized = {id(p) for group in step.solver.optimizer.param_groups for p in group["params"]}
    assert not teacher_ids & optimized


def test_train_mode_teacher_updates_bn_statistics_but_never_its_weights(
    data_root: Path, teacher_file: Path
) -> None:
    step, loader = _step(student(data_root, teacher_file, "distillation.teacher_mode=train"))
    assert step.distiller is not None
    teacher = step.distiller.teacher.model
    before = _snapshot(teacher)
    for iteration, batch in enumerate(islice(loader, 2)):
        step.run(batch, iteration)
    after = teacher.state_dict()
    weights = {name for name, _ in teacher.named_parameters()}
    assert teacher.training
    assert all(torch.equal(before[k], after[k]) for k in weights)
    statistics = [k for k in before if k.endswith("running_mean")]
    assert statistics and any(not torch.equal(before[k], after[k]) for k in statistics)
    assert all(p.grad is None for p in teacher.parameters())


def _onnx_parameter_count(path: Path) -> int:
    graph = onnx.load(str(path)).graph
    return sum(int(numpy_helper.to_array(t).size) for t in graph.initializer)


def test_distilled_run_logs_each_term_and_saves_and_exports_only_the_student(
    data_root: Path, teacher_file: Path, tmp_path: Path
) -> None:
    config = student(data_root, teacher_file, "export.formats=[onnx]")
    hooks = Recording()
    outcome = train(config, placement=WorkerPlacement(), hooks=hooks, work_dir=tmp_path)
    assert outcome.teacher_device == "cpu"
    metrics = hooks.epochs[-1].metrics
    terms = ("cross_entropy", "triplet", "distill_logit", "distill_pkt")
    values = [metrics[metric_names.train_loss_metric(term)] for term in terms]
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert metrics[metric_names.TRAIN_LOSS] == pytest.approx(sum(values), rel=1e-5)

    folder = outcome.final_checkpoint_dir
    assert folder is not None
    data = build_data(config.data)
    plain = build_model(config.model, config.input, num_classes=data.num_classes)
    saved = torch.load(folder / "model.pt", weights_only=True)
    assert saved["model"].keys() == plain.state_dict().keys()
    assert saved["source"]["label_map"] == label_map_digest(data.train)
    state = torch.load(folder / "state.pt", weights_only=True)
    assert state["model"].keys() == plain.state_dict().keys()
    student_parameters = sum(p.numel() for p in plain.parameters())
    teacher_parameters = sum(p.numel() for p in load_model_file(teacher_file).model.parameters())
    in_graph = _onnx_parameter_count(folder / "export" / "model.onnx")
    # The exported graph holds the student's weights (BN folded, the classifier dropped),
    # far from student + teacher.
    assert in_graph <= student_parameters < in_graph + teacher_parameters // 2


def _refusal(config: ReidConfig, teacher_file: Path) -> str | None:
    data = build_data(config.data)
    teacher = load_teacher(teacher_file, name="T", device=CPU, mode="eval")
    try:
        check_teacher_fits(
            teacher, config, num_classes=data.num_classes, label_map=label_map_digest(data.train)
        )
    except ReidError as error:
        return str(error)
    return None


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["data.validation.num_ids=3"], "classifies 6 identities and the student's"),
        (["data.validation.seed=7"], "class indices stand for other images"),
        (["model.classifier.kind=arcface"], "its classifier is linear and the student's arcface"),
    ],
)
def test_logit_term_refuses_a_teacher_with_other_classes(
    data_root: Path, teacher_file: Path, overrides: list[str], named: str
) -> None:
    refusal = _refusal(student(data_root, teacher_file, *overrides), teacher_file)
    assert refusal is not None and named in refusal and "teacher T" in refusal
    assert "\n" not in refusal
    # PKT alone needs none of these.
    pkt_only = student(data_root, teacher_file, *overrides, "distillation.logit.kind=none")
    assert _refusal(pkt_only, teacher_file) is None


def test_input_size_must_match_even_for_pkt(data_root: Path, teacher_file: Path) -> None:
    config = student(
        data_root, teacher_file, "input.size_train=[48,24]", "distillation.logit.kind=none"
    )
    refusal = _refusal(config, teacher_file)
    assert refusal is not None and "64×32" in refusal and "48×24" in refusal


def test_mgn_teacher_teaches_a_baseline_student_with_pkt_only(
    data_root: Path, teacher_file: Path, tmp_path: Path
) -> None:
    mgn = tiny(data_root, "model.kind=mgn", "model.backbone.name=resnet18")
    data = build_data(mgn.data)
    path = save_model_file(
        build_model(mgn.model, mgn.input, num_classes=data.num_classes),
        config=mgn,
        num_classes=data.num_classes,
        source={"format": "test", "label_map": label_map_digest(data.train)},
        out=tmp_path / "mgn.pt",
    )
    refusal = _refusal(student(data_root, path), path)
    assert refusal is not None and "8 classifier heads and the student 1" in refusal
    assert _refusal(student(data_root, path, "distillation.logit.kind=none"), path) is None


def test_a_teacher_is_required_and_a_run_teacher_must_be_fetched(data_root: Path) -> None:
    no_teacher = tiny(data_root, "distillation.enabled=true")
    with pytest.raises(ReidError, match="needs a teacher"):
        _step(no_teacher)
    by_run = tiny(data_root, "distillation.enabled=true", "distillation.teacher_run_id=abc123")
    with pytest.raises(ReidError, match="run abc123, but its model file was not fetched"):
        _step(by_run)


def test_student_starts_from_a_run_of_the_same_architecture(
    data_root: Path, teacher_file: Path
) -> None:
    config = tiny(data_root)
    data = build_data(config.data)
    model = build_model(config.model, config.input, num_classes=data.num_classes)
    load_student_init(model, teacher_file, name="T", student=config)
    source = load_model_file(teacher_file).model.state_dict()
    assert all(torch.equal(source[k], v) for k, v in model.state_dict().items())
    # Another class count: everything but the classifier.
    other = tiny(data_root, "data.validation.num_ids=3")
    fewer = build_model(other.model, other.input, num_classes=build_data(other.data).num_classes)
    head = fewer.state_dict()["head.classifier.weight"].clone()
    load_student_init(fewer, teacher_file, name="T", student=other)
    assert torch.equal(fewer.state_dict()["head.classifier.weight"], head)
    backbone = [k for k in source if k.startswith("backbone.")]
    assert backbone and all(torch.equal(fewer.state_dict()[k], source[k]) for k in backbone)
    wider = tiny(data_root, "model.neck.kind=linear")
    with pytest.raises(ReidError, match="differs from the student's model section"):
        load_student_init(
            build_model(wider.model, wider.input, num_classes=data.num_classes),
            teacher_file,
            name="T",
            student=wider,
        )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["distillation.teacher_run_id=a", "distillation.teacher_weights=b"],
            "either teacher_run_id or teacher_weights",
        ),
        (
            [
                "distillation.enabled=true",
                "distillation.logit.kind=none",
                "distillation.pkt.weight=0",
            ],
            "both of its terms are off",
        ),
        (
            [
                "distillation.enabled=true",
                "losses.cross_entropy.weight=0",
                "losses.triplet.enabled=false",
            ],
            "keeps the student's own re-id losses",
        ),
    ],
)
def test_distillation_config_refusals(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(QUICKSTART, overrides)


def test_default_weights_are_the_calibrated_ones() -> None:
    distillation = load_config(QUICKSTART).distillation
    assert (distillation.logit.kind, distillation.logit.weight) == ("l1", 1.0)
    assert distillation.pkt.weight == 100.0
    assert distillation.logit.jsdiv.temperature == 16.0


def test_the_teacher_goes_to_the_device_it_is_given(teacher_file: Path) -> None:
    """Never left where it was loaded (fast-reid#690: a teacher stuck on cuda:0)."""
    teacher = load_teacher(teacher_file, name="T", device=torch.device("meta"), mode="eval")
    assert teacher.device.type == "meta"
    assert {p.device.type for p in teacher.model.parameters()} == {"meta"}
    assert {b.device.type for b in teacher.model.buffers()} == {"meta"}
