"""The CLI's contract for bad input: one sentence naming the culprit, a non-zero exit."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from reid_platform.cli import main

MARKET_TRAIN = ["0001_c1s1_000001_00.jpg", "0001_c2s1_000002_00.jpg", "0002_c1s1_000003_00.jpg"]
MARKET_QUERY = ["0003_c1s1_000004_00.jpg"]
MARKET_GALLERY = ["0003_c2s1_000005_00.jpg", "0000_c3s1_000006_00.jpg", "-1_c1s1_000007_00.jpg"]


@pytest.fixture
def market_root(tmp_path: Path, write_images) -> Path:
    root = tmp_path / "Market-1501-v15.09.15"
    write_images(root / "bounding_box_train", MARKET_TRAIN)
    write_images(root / "query", MARKET_QUERY)
    write_images(root / "bounding_box_test", MARKET_GALLERY)
    return root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def one_sentence(err: str) -> str:
    """The single `error:` line of stderr (log lines may precede it); no traceback anywhere."""
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, err
    tail = err[err.index("error: ") :].strip()
    assert tail == errors[0], err  # nothing after the sentence
    return errors[0]


def config_file(tmp_path: Path, **extra: object) -> Path:
    mapping = {
        "seed": 0,
        "data": {
            "train": [{"name": "market1501", "root": "r"}],
            "test": [{"name": "market1501", "root": "r"}],
        },
        **extra,
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(mapping))
    return path


def test_config_show_prints_resolved_yaml(tmp_path: Path, capsys) -> None:
    status, out, _ = run(capsys, "config", "show", str(config_file(tmp_path)), "seed=7")
    assert status == 0
    assert yaml.safe_load(out)["seed"] == 7


def test_config_show_unknown_key(tmp_path: Path, capsys) -> None:
    path = config_file(tmp_path, solver={"max_epoch": 3})
    status, _, err = run(capsys, "config", "show", str(path))
    assert status != 0
    sentence = one_sentence(err)
    assert "solver.max_epoch" in sentence and "max_epochs" in sentence


def test_config_show_wrong_type(tmp_path: Path, capsys) -> None:
    status, _, err = run(capsys, "config", "show", str(config_file(tmp_path)), "seed=abc")
    assert status != 0
    assert "`seed`" in one_sentence(err)


def test_config_show_missing_file(tmp_path: Path, capsys) -> None:
    status, _, err = run(capsys, "config", "show", str(tmp_path / "none.yaml"))
    assert status != 0
    assert "none.yaml" in one_sentence(err)


def test_data_info_counts(market_root: Path, capsys) -> None:
    status, out, _ = run(
        capsys, "data", "info", "--dataset", "market1501", "--root", str(market_root), "--json"
    )
    assert status == 0
    counts = json.loads(out)
    assert set(counts) == {"train", "val", "query", "gallery"}
    assert counts["train"] == {"ids": 2, "cams": 2, "images": 3}
    assert counts["val"] == {"ids": 0, "cams": 0, "images": 0}
    assert counts["query"] == {"ids": 1, "cams": 1, "images": 1}
    # the -1 junk image is dropped, the 0000 distractor kept
    assert counts["gallery"] == {"ids": 2, "cams": 2, "images": 2}


def test_data_info_table_mentions_junk(market_root: Path, capsys) -> None:
    status, out, _ = run(
        capsys, "data", "info", "--dataset", "market1501", "--root", str(market_root)
    )
    assert status == 0
    assert "junk" in out and "distractor" in out


def test_data_info_missing_root(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nowhere"
    status, _, err = run(capsys, "data", "info", "--dataset", "market1501", "--root", str(missing))
    assert status != 0
    assert "nowhere" in one_sentence(err)


def test_data_info_corrupt_image(market_root: Path, capsys) -> None:
    corrupt = market_root / "query" / "0003_c3s1_000009_00.jpg"
    corrupt.write_bytes(b"not a jpeg at all")
    status, _, err = run(
        capsys, "data", "info", "--dataset", "market1501", "--root", str(market_root)
    )
    assert status != 0
    assert corrupt.name in one_sentence(err)


def test_data_info_unknown_dataset(tmp_path: Path, capsys) -> None:
    status, _, err = run(capsys, "data", "info", "--dataset", "market", "--root", str(tmp_path))
    assert status != 0
    assert "market1501" in one_sentence(err)


def test_console_script_exit_status(tmp_path: Path) -> None:
    reid = Path(sys.executable).with_name("reid")
    result = subprocess.run(
        [str(reid), "config", "show", str(config_file(tmp_path)), "seed=-1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "`seed`" in result.stderr
    assert "Traceback" not in result.stderr


def test_data_check_truncated_image_in_loader_worker(
    tmp_path: Path, write_images, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose header reads but whose pixels do not fails in a loader worker: one sentence."""
    root = tmp_path / "market"
    train = [
        f"{pid:04d}_c{cam}s1_00000{i}_00.jpg" for pid in (1, 2) for i, cam in enumerate((1, 2))
    ]
    write_images(root / "bounding_box_train", train)
    write_images(root / "query", ["0003_c1s1_000001_00.jpg"])
    write_images(root / "bounding_box_test", ["0003_c2s1_000002_00.jpg"])
    broken = root / "bounding_box_train" / train[0]
    noise = np.random.default_rng(0).integers(0, 255, (64, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(broken, format="JPEG")
    broken.write_bytes(broken.read_bytes()[:900])  # header intact, half the pixels gone
    with Image.open(broken) as header_only:
        assert header_only.size == (32, 64)  # so the scan passes and a loader worker meets it
    path = config_file(
        tmp_path,
        data={
            "train": [{"name": "market1501", "root": str(root)}],
            "test": [{"name": "market1501", "root": str(root)}],
            "sampler": {"kind": "identity", "num_instances": 2},
            "loader": {"batch_size": 4, "num_workers": 1},
        },
    )
    monkeypatch.chdir(tmp_path)
    status, _, err = run(capsys, "data", "check", str(path))
    assert status != 0
    assert broken.name in one_sentence(err)


def test_data_synth_then_info(tmp_path: Path, capsys) -> None:
    out = tmp_path / "synth"
    argv = ["data", "synth", "--out", str(out), "--ids", "8", "--cams", "3", "--images-per-id", "6"]
    status, stdout, _ = run(capsys, *argv)
    assert status == 0 and "train 4 ids" in stdout
    status, stdout, _ = run(
        capsys, "data", "info", "--dataset", "market1501", "--root", str(out), "--json"
    )
    counts = json.loads(stdout)
    assert counts["train"]["ids"] == 4 and counts["train"]["images"] == 4 * 6
    # a second run refuses to write into the now non-empty folder, and leaves it as it was
    before = sorted(p.name for p in out.rglob("*"))
    status, _, err = run(capsys, *argv)
    assert status != 0 and str(out) in one_sentence(err)
    assert sorted(p.name for p in out.rglob("*")) == before


def test_data_synth_bad_parameter(tmp_path: Path, capsys) -> None:
    status, _, err = run(capsys, "data", "synth", "--out", str(tmp_path / "s"), "--ids", "2")
    assert status != 0
    assert "ids" in one_sentence(err)
