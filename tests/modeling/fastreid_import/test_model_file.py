"""Our `model.pt`: readable with `weights_only=True`, rebuilt to the same embeddings."""

from pathlib import Path

import pytest
import torch
import yaml

from reid_platform.errors import ReidError
from reid_platform.modeling.fastreid_import import (
    import_fastreid_checkpoint,
    load_model_file,
    save_imported_model,
)

R18 = ("model.backbone.name=resnet18",)


@pytest.mark.parametrize("with_classifier", [True, False])
def test_save_and_load(
    with_classifier, tmp_path: Path, make_config, build, to_fastreid, images
) -> None:
    state = to_fastreid(build(make_config(*R18), 10).state_dict(), layout="old")
    if not with_classifier:
        del state["heads.classifier.weight"]
    checkpoint = tmp_path / "fastreid.pth"
    torch.save({"model": state, "iteration": 10}, checkpoint)
    report = import_fastreid_checkpoint(checkpoint, make_config(*R18))
    out = save_imported_model(report, tmp_path / "out" / "model.pt")

    payload = torch.load(out, weights_only=True)
    assert set(payload) == {"model", "config", "num_classes", "source"}
    assert payload["num_classes"] == (10 if with_classifier else 0)
    assert ("head.classifier.weight" in payload["model"]) is with_classifier
    assert payload["source"]["layout"] == "old"
    assert payload["source"]["validated_keys"] == ["pixel_mean", "pixel_std"]
    assert payload["source"]["other_entries"] == ["iteration"]
    config = yaml.safe_load(payload["config"])
    assert config["model"]["backbone"]["reference_stem"] is True
    assert config["model"]["neck"]["embedding"] == "after"

    loaded = load_model_file(out)
    x = images(2, (64, 32))
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x).embedding, report.model(x).embedding)
    assert loaded.config == report.config
    assert loaded.num_classes == payload["num_classes"]


def test_load_refuses_a_foreign_file(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(ReidError, match="lacks one of the entries"):
        load_model_file(path)
