"""`cpu_copy`: the model exported at the end of training is an exact, independent CPU copy."""

import torch
from torch import nn

from reid_platform.training.final_export import cpu_copy


def _trained_model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5)
    )
    model.register_buffer("scratch", torch.arange(3.0), persistent=False)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # moves the BN running statistics away from their initial values
            model(torch.randn(8, 3, 8, 8) * 3 + 1)
    return model


def test_the_copy_computes_what_the_model_computes_and_shares_nothing() -> None:
    model = _trained_model()
    copied = cpu_copy(model)
    assert copied.training  # the flags are copied; export_final_model sets eval itself
    model.eval()
    copied.eval()
    images = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(copied(images), model(images), rtol=0, atol=0)
    originals = dict(model.state_dict(keep_vars=True)) | {"scratch": model.scratch}
    copies = dict(copied.state_dict(keep_vars=True)) | {"scratch": copied.scratch}
    assert originals.keys() == copies.keys() and "1.num_batches_tracked" in copies
    for key, original in originals.items():
        twin = copies[key]
        assert twin.device.type == "cpu" and type(twin) is type(original)
        assert twin.requires_grad == original.requires_grad
        assert torch.equal(twin, original) and twin.data_ptr() != original.data_ptr()
    with torch.no_grad():
        next(copied.parameters()).add_(1.0)
    assert not torch.equal(next(copied.parameters()), next(model.parameters()))


def test_tied_weights_stay_tied() -> None:
    encoder, decoder = nn.Linear(3, 3), nn.Linear(3, 3)
    decoder.weight = encoder.weight
    copied = cpu_copy(nn.Sequential(encoder, decoder))
    assert isinstance(copied, nn.Sequential)
    assert copied[0].weight is copied[1].weight and copied[0].weight is not encoder.weight
