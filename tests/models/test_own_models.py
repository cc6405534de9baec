"""A user's own model: loading it, naming its classes, fitting its weights."""

from __future__ import annotations

import os
import sys

import pytest
import torch
from torch import nn

import deepinside
from deepinside import DeepInsideError, Preprocessing, load_model
from deepinside.cli import main


def _not_importable_from_here(monkeypatch, folder):
    """The working folder as an installed ``deepinside`` script sees it: not on sys.path."""
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", os.getcwd())])


def test_load_model_returns_the_model_in_eval_mode(model):
    assert not model.training and not model.net.training


def test_a_factory_in_the_working_folder_is_found(tiny_module, monkeypatch):
    _not_importable_from_here(monkeypatch, tiny_module)
    model = load_model("tinymod:build", input_size=16)
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 3)
    assert str(tiny_module) not in sys.path  # the import path is left as it was


def test_an_nn_module_is_wrapped_with_its_preprocessing():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)
    )
    stats = net[1].running_mean.clone()
    model = load_model(net, input_size=(20, 24), mean=(0.5,) * 3, std=(0.25,) * 3, classes=list("abcde"))
    assert model.net is net and model.preprocessing == Preprocessing(
        (20, 24), (0.5,) * 3, (0.25,) * 3, "stretch"
    )
    assert torch.equal(net[1].running_mean, stats)  # probing its output moved no batch-norm statistics
    assert net.training  # a module the user passed keeps its own flags
    assert model.classes.resolve("d") == 3
    with pytest.raises(DeepInsideError, match="give its input size"):
        load_model(net)
    with pytest.raises(DeepInsideError, match="a torch.nn.Module, got a int"):
        load_model(42)  # type: ignore[arg-type]
    with pytest.raises(DeepInsideError, match="already a deepinside Classifier"):
        load_model(model)


def test_class_names_as_a_list_or_a_file(tiny_module, monkeypatch, tmp_path):
    _not_importable_from_here(monkeypatch, tiny_module)
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 3))
    model = deepinside.Classifier(
        net, Preprocessing((4, 4)), classes=["cat", "dog, puppy", "n01440764 tench"]
    )
    assert model.classes.resolve("puppy") == 1 and model.classes[2].wnid == "n01440764"
    names = tmp_path / "names.txt"
    names.write_text("cat\n\ndog, puppy\nn01440764 tench, Tinca tinca\n")
    model = load_model("tinymod:build", input_size=16, classes=names)
    assert [c.label for c in model.classes.classes] == ["cat", "dog", "tench"]
    with pytest.raises(DeepInsideError, match=r"dgo'.*classes --classes .*names.txt WORD"):
        model.classes.resolve("dgo")
    with pytest.raises(DeepInsideError, match="2 class names given, but model 'tinymod:build' has 3 outputs"):
        load_model("tinymod:build", input_size=16, classes=["a", "b"])


def test_a_model_without_names_is_not_pointed_at_imagenet(tiny_module, monkeypatch):
    _not_importable_from_here(monkeypatch, tiny_module)
    model = load_model("tinymod:build", input_size=16)
    with pytest.raises(DeepInsideError) as numbered:
        model.classes.resolve("tabby")
    assert "deepinside classes WORD" not in str(numbered.value) and "--classes FILE" in str(numbered.value)
    bare = deepinside.Classifier(model.net, model.preprocessing)
    with pytest.raises(DeepInsideError, match="has no class names; give them") as unnamed:
        deepinside.saliency(bare, torch.zeros(1, 3, 16, 16), "tabby")
    assert "only with a deepinside Classifier" not in str(unnamed.value)


def test_class_files_on_the_command_line(tiny_module, monkeypatch, tmp_path, capsys):
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog, puppy\ntench\n")
    assert main(["classes", "--classes", str(names), "pup"]) == 0
    assert capsys.readouterr().out.split() == ["1", "dog,", "puppy"]
    assert main(["classes", "--model", "tinymod:build"]) == 2
    assert "--classes FILE" in capsys.readouterr().err
    assert main(["classes", "--classes", str(tmp_path / "none.txt")]) == 2
    assert "no such class file" in capsys.readouterr().err


def test_weights_that_do_not_fit_name_the_keys(tiny_module, monkeypatch, tmp_path):
    _not_importable_from_here(monkeypatch, tiny_module)
    state = {
        "features.weight": torch.zeros(8, 3, 3, 3),
        "features.bias": torch.zeros(4),
        "head.weight": torch.zeros(1),
    }
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(DeepInsideError) as err:
        load_model("tinymod:build", input_size=16, weights=tmp_path / "w.pt")
    message = str(err.value)
    assert "missing fc.weight, fc.bias" in message and "unexpected head.weight" in message
    assert "features.weight (file 8x3x3x3, model 4x3x3x3)" in message


def test_prepare_reads_paths_safely(model, photos, tmp_path):
    photos["coffee"].save(tmp_path / "coffee.png")
    from_path, _ = model.prepare([tmp_path / "coffee.png", str(tmp_path / "coffee.png")])
    from_image, _ = model.prepare([photos["coffee"]])
    torch.testing.assert_close(from_path[0], from_image[0])
    with pytest.raises(DeepInsideError, match="no such file"):
        model.prepare([tmp_path / "missing.png"])
    with pytest.raises(DeepInsideError, match="a list of photos"):
        model.prepare(str(tmp_path / "coffee.png"))  # type: ignore[arg-type]
