"""The export section: no formats allowed, ONNX int8 and repeated formats refused early."""

import pytest

from reid_platform.config import load_config
from reid_platform.errors import ReidError

QUICKSTART = "experiments/quickstart.yaml"


def test_defaults_and_no_export() -> None:
    export = load_config(QUICKSTART).export
    assert (export.parity_tolerance, export.validation_images) == (1e-4, 512)
    assert load_config(QUICKSTART, ["export.formats=[]"]).export.formats == ()
    tensorrt_int8 = ["export.formats=[tensorrt]", "export.precision=int8"]
    assert load_config(QUICKSTART, tensorrt_int8).export.precision == "int8"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["export.precision=int8"], "int8 applies to TensorRT engines only"),
        (["export.formats=[onnx,onnx]"], "formats lists a format more than once"),
        (["export.parity_tolerance=0"], "export.parity_tolerance"),
        (["export.validation_images=4"], "export.validation_images"),
    ],
)
def test_invalid_export_settings_are_named(overrides: list[str], message: str) -> None:
    with pytest.raises(ReidError, match=message):
        load_config(QUICKSTART, overrides)
