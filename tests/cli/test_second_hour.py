"""What a new user meets after the quick start (the issue "The second
hour"): options that do what they say, in one spelling for every command."""

from __future__ import annotations

import json

import pytest

from deepinside.models import imagenet_classes


def test_several_methods_in_one_run_with_either_spelling(cli, tmp_path, photos):
    photos["chelsea"].save(tmp_path / "cat.jpg")
    out = tmp_path / "out"
    code, _, err = cli(
        "saliency", tmp_path / "cat.jpg", "--method", "gradient", "--method", "grad-cam", "--out", out
    )
    assert code == 0, err
    assert json.loads((out / "cat.json").read_text())["methods"] == ["gradient", "grad-cam"]
    code, _, err = cli(
        "saliency",
        tmp_path / "cat.jpg",
        "--methods",
        "smoothgrad",
        "gradient",
        "--samples",
        "2",
        "--out",
        out,
    )
    assert code == 0, err
    assert json.loads((out / "cat.json").read_text())["methods"] == ["grad-cam", "smoothgrad", "gradient"]
    assert "1 of 1 images explained" in err


def test_target_and_top_k_together_are_refused(cli, tmp_path, photos):
    photos["chelsea"].save(tmp_path / "cat.jpg")
    code, _, err = cli(
        "saliency", tmp_path / "cat.jpg", "--target", "tabby", "--top-k", "3", "--out", tmp_path
    )
    assert code == 2 and "give --target (these classes) or --top-k (the K best), not both" in err


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.startswith("deepinside ")


@pytest.mark.parametrize(
    "query, first",
    [
        ("retriever dog", {205, 206, 207, 208, 209}),  # every retriever before any other dog
        ("cat", {281, 282, 283, 284, 285}),  # the cats, not Rana catesbeiana
        ("tabby", {281}),
    ],
)
def test_class_search_puts_whole_words_and_rare_words_first(query, first):
    found = [c.index for c in imagenet_classes().search(query)]
    assert set(found[: len(first)]) == first


def test_class_search_says_when_it_falls_back_to_close_spellings(cli):
    code, out, _ = cli("classes", "tabbby")
    assert code == 0 and out.splitlines()[0] == "no class name holds 'tabbby'; the closest spellings:"
    assert "281" in out
