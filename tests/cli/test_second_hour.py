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


def test_a_raw_format_change_leaves_no_stale_values(cli, tmp_path, photos):
    photos["chelsea"].save(tmp_path / "cat.jpg")
    out = tmp_path / "out"
    assert cli("saliency", tmp_path / "cat.jpg", "--raw", "npz16", "--out", out)[0] == 0
    assert len(list(out.glob("*.raw.npz"))) == 1
    assert cli("saliency", tmp_path / "cat.jpg", "--raw", "npy", "--out", out)[0] == 0
    assert not list(out.glob("*.raw.npz")) and len(list(out.glob("*.raw.npy"))) == 1


def test_a_missing_path_is_not_counted_as_an_image(cli, tmp_path, photos):
    photos["chelsea"].save(tmp_path / "cat.jpg")
    code, _, err = cli(
        "saliency", tmp_path / "cat.jpg", tmp_path / "no-such-folder", "--out", tmp_path / "out"
    )
    assert code == 1 and "1 of 1 images explained; 1 path not found; results in" in err


def test_classmodel_overwrite_replaces_a_run_with_other_settings(cli, tmp_path):
    out = tmp_path / "out"
    base = ["classmodel", "goldfish", "--size", "64", "--out", out, "--early-stop", "off", "--retries", "0"]
    assert cli(*base, "--steps", "1")[0] in (0, 1)
    (out / "notes.txt").write_text("mine")
    code, _, err = cli(*base, "--steps", "2")
    assert code == 2 and "or --overwrite to delete its results" in err
    assert cli(*base, "--steps", "2", "--overwrite")[0] in (0, 1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and (out / "notes.txt").read_text() == "mine"


def test_a_manifest_with_an_absolute_missing_path_gets_no_relative_hint(cli, tmp_path):
    manifest = tmp_path / "val.csv"
    manifest.write_text(f"path\n{tmp_path / 'gone.jpg'}\n")
    code, _, err = cli("batch", manifest, "--out", tmp_path / "out", "--index", "jsonl")
    assert code == 2 and "no such file" in err and "relative to the manifest" not in err
