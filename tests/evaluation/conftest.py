"""`device`: a test that takes it runs on the CPU and, where one is present, on a CUDA GPU."""

import pytest
import torch

ON_GPU = pytest.param(
    "cuda",
    marks=[
        pytest.mark.gpu,
        pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
    ],
)


@pytest.fixture(params=["cpu", ON_GPU])
def device(request: pytest.FixtureRequest) -> str:
    """ "cpu", then "cuda" (marked `gpu`, skipped without a GPU)."""
    return str(request.param)
