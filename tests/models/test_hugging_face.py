"""Hugging Face classifiers as users load them: output objects, and folders
written by ``save_pretrained`` (random weights; nothing is downloaded)."""

from __future__ import annotations

import json

import pytest
import torch

import deepinside
from deepinside import DeepInsideError, attribute
from deepinside.cli import main

from . import zoo

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def resnet():
    build, _, _ = zoo.hugging_face()["HF ResNet"]
    return build()


def test_an_output_object_is_explained_by_its_logits(resnet):
    x = torch.randn(2, 3, 64, 64)
    ours = attribute(resnet, x, [0, 3]).raw
    y = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(resnet(y).logits[torch.arange(2), [0, 3]].sum(), y)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-7)
    assert attribute(resnet, x, 0, "grad-cam").raw.shape == (2, 1, 64, 64)


@pytest.fixture(scope="module")
def saved(tmp_path_factory, resnet):
    """A save_pretrained folder with class names and an image processor's settings."""
    folder = tmp_path_factory.mktemp("hf") / "my-resnet"
    resnet.config.id2label = {i: name for i, name in enumerate(["cat", "dog", "bird", "fish", "frog"])}
    resnet.config.label2id = {v: k for k, v in resnet.config.id2label.items()}
    resnet.save_pretrained(folder)
    processor = {
        "size": {"height": 64, "width": 64},
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor))
    return folder


def test_a_saved_folder_loads_with_its_classes_size_and_normalisation(saved, resnet):
    model = deepinside.load_model(saved)
    assert model.name == "my-resnet"
    assert model.preprocessing.input_size == (64, 64) and model.preprocessing.mean == (0.5, 0.5, 0.5)
    assert [c.label for c in model.classes.classes] == ["cat", "dog", "bird", "fish", "frog"]
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model.scores(x), resnet(x).logits.detach())
    assert model.classes.resolve("frog") == 4
    with pytest.raises(DeepInsideError, match="holds its own weights"):
        deepinside.load_model(saved, weights=saved / "model.safetensors")


def test_a_folder_that_is_not_a_classifier_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(DeepInsideError, match="not a Hugging Face image classifier"):
        deepinside.load_model(tmp_path)


@pytest.mark.parametrize("method", ["gradient", "grad-cam"])
def test_the_command_line_explains_a_saved_folder(saved, tmp_path, photos, capsys, method):
    photos["coffee"].save(tmp_path / "coffee.jpg")
    out = tmp_path / "out"
    run = [
        "saliency",
        str(tmp_path / "coffee.jpg"),
        "--model",
        str(saved),
        "--method",
        method,
        "--out",
        str(out),
    ]
    assert main(run) == 0
    record = json.loads((out / "coffee.json").read_text())
    assert record["predictions"][0]["label"] in {"cat", "dog", "bird", "fish", "frog"}
    err = capsys.readouterr().err
    if method == "grad-cam":
        assert record["maps"][0]["layer"] == "resnet.encoder.stages.1"
        assert err.count("feature layer resnet.encoder.stages.1") == 1


def test_localize_runs_on_a_saved_folder(saved, tmp_path, photos):
    photos["chelsea"].save(tmp_path / "cat.jpg")
    assert (
        main(
            [
                "localize",
                str(tmp_path / "cat.jpg"),
                "--model",
                str(saved),
                "--top-k",
                "1",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )


@pytest.fixture(scope="module")
def saved_vit(tmp_path_factory):
    """A ViT saved as users save one: default (SDPA) attention, 64 px, patch 8."""
    torch.manual_seed(0)
    config = transformers.ViTConfig(
        num_labels=5,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=64,
        patch_size=8,
    )
    folder = tmp_path_factory.mktemp("vit") / "vit"
    transformers.ViTForImageClassification(config).save_pretrained(folder)
    return folder


def test_the_command_line_explains_localises_and_visualises_a_saved_vit(saved_vit, tmp_path, photos, capsys):
    photos["chelsea"].save(tmp_path / "cat.jpg")
    model = ["--model", str(saved_vit)]
    for method in ("attention-rollout", "attention-relevance", "grad-cam"):
        assert (
            main(
                [
                    "saliency",
                    str(tmp_path / "cat.jpg"),
                    *model,
                    "--method",
                    method,
                    "--out",
                    str(tmp_path / "s"),
                ]
            )
            == 0
        )
    record = json.loads((tmp_path / "s" / "cat.json").read_text())
    assert record["methods"] == ["attention-rollout", "attention-relevance", "grad-cam"]
    rollout = main(
        [
            "saliency",
            str(tmp_path / "cat.jpg"),
            *model,
            "--method",
            "attention-rollout",
            "--head-fusion",
            "max",
        ]
    )
    assert rollout == 0
    assert (
        main(["localize", str(tmp_path / "cat.jpg"), *model, "--top-k", "1", "--out", str(tmp_path / "l")])
        == 0
    )
    assert main(["classmodel", "0", *model, "--steps", "2", "--out", str(tmp_path / "c")]) in (0, 1)
    assert (tmp_path / "c" / "0000-class-0.png").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_the_attention_methods_are_offered_where_they_apply(saved_vit, model):
    from deepinside.web.app import methods_for

    vit = deepinside.load_model(saved_vit)
    assert {"attention-rollout", "attention-relevance", "grad-cam"} <= set(methods_for(vit))
    assert not {"attention-rollout", "attention-relevance"} & set(methods_for(model))


def test_an_attention_option_for_another_method_is_refused(capsys):
    assert main(["saliency", "x.jpg", "--method", "grad-cam", "--head-fusion", "max"]) == 2
    assert "--head-fusion applies to attention-rollout only, not to grad-cam" in capsys.readouterr().err


@pytest.mark.parametrize("metric", ["faithfulness", "sanity-check"])
def test_evaluate_compares_the_transformer_methods(saved_vit, tmp_path, photos, capsys, metric):
    photos["coffee"].save(tmp_path / "coffee.jpg")
    methods = ["attention-rollout", "attention-relevance", "grad-cam"]
    run = [
        "evaluate",
        metric,
        "--images",
        str(tmp_path / "coffee.jpg"),
        "--model",
        str(saved_vit),
        "--methods",
        *methods,
    ]
    assert main([*run, "--steps", "4"] if metric == "faithfulness" else [*run, "--checkpoints", "2"]) == 0
    out = capsys.readouterr().out
    assert all(m in out for m in methods) and "net." not in out
