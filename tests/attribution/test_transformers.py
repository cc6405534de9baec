"""Vision transformers: attention rollout and attention relevance against
hand-worked cases and an independent implementation on Hugging Face's
eager attention, and Grad-CAM on token grids against Grad-CAM by hand."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

import deepinside
from deepinside import DeepInsideError, attribute
from deepinside.attribution.attention import relevance, rollout
from tests.models import oracles, zoo

transformers = pytest.importorskip("transformers")

#: Two blocks, two heads, a class token and four patches (2 x 2), batch 1.
A1 = np.array(
    [
        [
            [0.6, 0.1, 0.1, 0.1, 0.1],
            [0.2, 0.2, 0.2, 0.2, 0.2],
            [0.1, 0.1, 0.6, 0.1, 0.1],
            [0.0, 0.5, 0.0, 0.5, 0.0],
            [0.25, 0.0, 0.25, 0.0, 0.5],
        ],
        [
            [0.2, 0.4, 0.1, 0.1, 0.2],
            [0.5, 0.5, 0.0, 0.0, 0.0],
            [0.2, 0.2, 0.2, 0.2, 0.2],
            [0.1, 0.1, 0.1, 0.6, 0.1],
            [0.3, 0.1, 0.1, 0.1, 0.4],
        ],
    ]
)
A2 = np.array(
    [
        [
            [0.1, 0.1, 0.7, 0.05, 0.05],
            [0.2, 0.2, 0.2, 0.2, 0.2],
            [0.0, 0.0, 1.0, 0.0, 0.0],
            [0.3, 0.3, 0.0, 0.4, 0.0],
            [0.2, 0.2, 0.2, 0.2, 0.2],
        ],
        [
            [0.3, 0.1, 0.1, 0.1, 0.4],
            [0.1, 0.6, 0.1, 0.1, 0.1],
            [0.25, 0.25, 0.25, 0.25, 0.0],
            [0.0, 0.0, 0.0, 0.0, 1.0],
            [0.2, 0.2, 0.2, 0.2, 0.2],
        ],
    ]
)


def test_rollout_is_abnar_and_zuidemas_formula_worked_by_hand():
    # Per block: heads averaged, + I, rows renormalised ((A + I) / 2 as rows sum to 1); block 2 after 1.
    eye = np.eye(5)
    r1, r2 = (A1.mean(0) + eye) / 2, (A2.mean(0) + eye) / 2
    expected = r2 @ r1
    # The class token's row, worked out for its first patch: sum_k r2[0, k] * r1[k, 1].
    assert expected[0, 1] == pytest.approx(sum(r2[0, k] * r1[k, 1] for k in range(5)))
    found = rollout([torch.tensor(A1)[None], torch.tensor(A2)[None]])
    np.testing.assert_allclose(found[0].numpy(), expected, rtol=1e-12)
    # max fusion: the heads' elementwise maximum, rows renormalised with the identity.
    m1, m2 = (np.maximum(*A1) + eye), (np.maximum(*A2) + eye)
    m1, m2 = m1 / m1.sum(1, keepdims=True), m2 / m2.sum(1, keepdims=True)
    found = rollout([torch.tensor(A1)[None], torch.tensor(A2)[None]], head_fusion="max")
    np.testing.assert_allclose(found[0].numpy(), m2 @ m1, rtol=1e-12)


def test_relevance_is_chefers_formula_worked_by_hand():
    g1 = np.linspace(-1, 1, 50).reshape(2, 5, 5)
    g2 = np.cos(np.arange(50.0)).reshape(2, 5, 5)
    # R = I; R += mean_h (grad * A)^+ R, block by block.
    r = np.eye(5)
    for a, g in ((A1, g1), (A2, g2)):
        r = r + np.clip(g * a, 0, None).mean(0) @ r
    found = relevance(
        [torch.tensor(A1)[None], torch.tensor(A2)[None]], [torch.tensor(g1)[None], torch.tensor(g2)[None]]
    )
    np.testing.assert_allclose(found[0].numpy(), r, rtol=1e-12)


def _vit(family: str = "HF ViT"):
    build, size, _ = zoo.hugging_face()[family]
    return build(), size


@pytest.mark.parametrize("family", ["HF ViT", "HF DeiT", "HF DINOv2"])
@pytest.mark.parametrize("method", ["attention-rollout", "attention-relevance"])
def test_attention_methods_on_sdpa_equal_the_definitions_on_eager(family, method):
    model, size = _vit(family)
    assert model.config._attn_implementation == "sdpa"  # as users load it
    torch.manual_seed(1)
    x = torch.randn(2, 3, size, size)
    ours = attribute(model, x, [1, 3], method).raw
    assert model.config._attn_implementation == "sdpa"  # left as it was
    expected = oracles.attention_map(model, x, [1, 3], method)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-6)
    # The same weights loaded with eager attention give the same maps.
    torch.testing.assert_close(attribute(model, x, [1, 3], method).raw, ours, rtol=1e-4, atol=1e-6)
    assert model.config._attn_implementation == "eager"


def test_rollout_is_class_independent_and_relevance_is_not():
    model, size = _vit()
    x = torch.randn(1, 3, size, size)
    assert torch.equal(
        attribute(model, x, 0, "attention-rollout").raw, attribute(model, x, 4, "attention-rollout").raw
    )
    assert not torch.allclose(
        attribute(model, x, 0, "attention-relevance").raw, attribute(model, x, 4, "attention-relevance").raw
    )


def test_attention_options_and_refusals():
    model, size = _vit()
    x = torch.randn(1, 3, size, size)
    kept = attribute(model, x, 0, "attention-rollout", discard_ratio=0.5).raw
    assert kept.shape == (1, 1, size, size) and torch.isfinite(kept).all()
    with pytest.raises(DeepInsideError, match="head fusion must be mean, max or min"):
        attribute(model, x, 0, "attention-rollout", head_fusion="median")
    swin, swin_size = _vit("HF Swin")
    with pytest.raises(DeepInsideError, match="windowed or cross attention"):
        attribute(swin, torch.randn(1, 3, swin_size, swin_size), 0, "attention-rollout")
    with pytest.raises(DeepInsideError, match="found no attention"):
        attribute(zoo.InplaceVgg().eval(), torch.randn(1, 3, 32, 32), 0, "attention-relevance")


def test_attention_from_several_threads_leaves_the_model_as_it_was():
    model, size = _vit()
    model.set_attn_implementation("eager")
    x = torch.randn(2, 3, size, size)
    expected = attribute(model, x, [0, 1], "attention-relevance").raw
    found, errors = [], []

    def call() -> None:
        try:
            found.append(attribute(model, x, [0, 1], "attention-relevance").raw)
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(torch.equal(f, expected) for f in found)
    assert model.config._attn_implementation == "eager"


@pytest.mark.parametrize("family", ["HF ViT", "HF DINOv2", "HF Swin"])
def test_grad_cam_on_a_token_grid_is_grad_cam_by_hand_on_the_reshaped_tokens(family):
    model, size = _vit(family)
    x = torch.randn(2, 3, size, size)
    found = deepinside.load_model(model, input_size=size).find_feature_layer()
    expected_layer = {
        "HF ViT": "vit.layers.1.layernorm_before",
        "HF DINOv2": "dinov2.layernorm",
        "HF Swin": "swin.layernorm",
    }
    assert found == expected_layer[family]
    ours = attribute(model, x, [2, 0], "grad-cam").raw
    expected = oracles.token_grad_cam(model, x, [2, 0], model.get_submodule(found))
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-6)
