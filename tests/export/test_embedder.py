"""The exported module and its input contract, checked against the model (no export needed)."""

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.functional import normalize

from reid_platform.config.input import InputConfig
from reid_platform.export import INPUT_NAME, ExportedEmbedder, input_contract
from reid_platform.export.embedder import eval_mode

BuildVariant = Callable[[str], nn.Module]


def test_contract_states_the_config_preprocessing(
    build_variant: BuildVariant, tiny_input: InputConfig
) -> None:
    contract = input_contract(build_variant("ibn"))
    height, width = tiny_input.size_test
    assert contract.name == INPUT_NAME == "images_rgb_0_255"
    assert contract.shape == ("batch", 3, height, width)
    assert (contract.mean, contract.std) == (tiny_input.mean, tiny_input.std)
    assert contract.value_range == (0.0, 255.0)
    assert (contract.layout, contract.channel_order, contract.dtype) == ("NCHW", "RGB", "float32")
    assert contract.normalization_in_graph and contract.interpolation == tiny_input.interpolation


def test_embedder_is_the_evaluated_embedding(
    build_variant: BuildVariant, make_images: Callable[..., Tensor]
) -> None:
    model = build_variant("gem_learnable").eval()
    images = make_images(3)
    with torch.no_grad():
        expected = model(images).embedding
        raw = ExportedEmbedder(model, normalize=False)(images)
        unit = ExportedEmbedder(model, normalize=True)(images)
    torch.testing.assert_close(raw, expected)
    torch.testing.assert_close(unit, normalize(expected, dim=1))
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(3))


def test_eval_mode_restores_each_module_flag(build_variant: BuildVariant) -> None:
    model = build_variant("reduction").train()
    backbone, head = model.get_submodule("backbone"), model.get_submodule("head")
    backbone.eval()  # e.g. a frozen backbone inside a training model
    with eval_mode(model):
        assert not any(module.training for module in model.modules())
    assert model.training and not backbone.training and head.training
