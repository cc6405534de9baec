"""Class models with no silent failures: a class whose picture is not its
model's top-1 with the required probability is rendered again from other
seeds, within ``retries``, and is reported as not converged otherwise."""

from __future__ import annotations

import json

import pytest

import deepinside
from deepinside.errors import DeepInsideError
from deepinside.visualization import visualize_class
from deepinside.visualization.early_stop import EarlyStop
from deepinside.visualization.job import ClassModelJob, not_converged, run_job

from .conftest import HALF, _cli, linear_model


def tiny_classifier() -> deepinside.Classifier:
    return deepinside.Classifier(linear_model(classes=5), HALF, deepinside.models.with_default_classes(5))


def job(tmp_path, probability: float, retries: int, targets=(0, 1, 2)) -> ClassModelJob:
    """One step a class: far too few to reach a high probability."""
    return ClassModelJob.for_model(
        tiny_classifier(),
        targets,
        tmp_path / "out",
        steps=1,
        early_stop=EarlyStop(probability=probability, first=1),  # judged from the first step
        retries=retries,
        batch_size=8,
    )


def final_probability(model, target: int, seed: int) -> float:
    result = visualize_class(model, [target], steps=1, early_stop=False, seed=seed, batch_size=8)
    return float(result.final_probabilities[0])


def test_a_class_that_never_converges_is_reported_after_its_retries(tmp_path):
    model = tiny_classifier()
    unreachable = job(tmp_path, probability=0.999, retries=2)
    run_job(unreachable, model)
    records = unreachable.finish()
    assert [r["converged"] for r in records] == [False] * 3
    assert [r["attempts"] for r in records] == [3] * 3, "one run and two retries, no more"
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["not_converged"] == not_converged(records) == [r["label"] for r in records]
    assert summary["retries"] == 2 and summary["required_probability"] == 0.999
    # The kept picture is the most probable of the three seeds.
    for r in records:
        tries = [final_probability(model, int(r["class_index"]), seed) for seed in (0, 1, 2)]
        assert r["final_probability"] == pytest.approx(max(tries), abs=1e-6)
        assert r["seed"] == tries.index(max(tries))


def test_a_retry_that_converges_is_kept_and_stops_the_retries(tmp_path):
    model = tiny_classifier()
    # A class and a required probability that seed 0 misses and seed 1 reaches.
    target, first, second = max(
        ((t, final_probability(model, t, 0), final_probability(model, t, 1)) for t in range(5)),
        key=lambda c: c[2] - c[1],
    )
    assert second > first, "some class must do better from seed 1"
    required = (first + second) / 2
    retried = job(tmp_path, probability=required, retries=3, targets=(target,))
    run_job(retried, model)
    (record,) = retried.finish()
    assert record["converged"] is True and record["seed"] == 1 and record["attempts"] == 2
    assert record["final_probability"] == pytest.approx(second, abs=1e-6)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["not_converged"] == []


def test_no_retries_when_every_class_converges(tmp_path):
    easy = job(tmp_path, probability=1e-6, retries=2)
    run_job(easy, tiny_classifier())
    assert [(r["converged"], r["attempts"], r["seed"]) for r in easy.finish()] == [(True, 1, 0)] * 3


def test_retries_must_be_a_whole_number(tmp_path):
    for bad in (-1, 1.5, True):
        with pytest.raises(DeepInsideError, match="retries must be"):
            job(tmp_path, probability=0.5, retries=bad)  # type: ignore[arg-type]


@pytest.fixture
def judged_at_once(monkeypatch):
    """One step judged as a full run would be (not a fast preview): the retry
    logic is what is tested, and the real model's 96 steps would be slow."""
    monkeypatch.setattr(ClassModelJob, "fast_preview", property(lambda self: False))


def test_the_command_exits_non_zero_and_names_the_classes(tmp_path, capsys, judged_at_once):
    out = tmp_path / "out"
    argv = ["classmodel", "goldfish", "tabby", "--steps", "1", "--size", "64", "--retries", "1"]
    assert _cli([*argv, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "2 of 2 classes did not converge" in err and "after 2 tries" in err
    assert "goldfish" in err and "tabby" in err and "not_converged" in err
    records = json.loads((out / "summary.json").read_text())["classes"]
    assert [(r["converged"], r["attempts"]) for r in records] == [(False, 2), (False, 2)]


def test_the_convincing_preset_keeps_the_retries_with_its_stricter_rule(tmp_path, capsys, judged_at_once):
    out = tmp_path / "out"
    argv = ["classmodel", "goldfish", "--preset", "convincing", "--steps", "1", "--size", "64"]
    assert _cli([*argv, "--retries", "1", "--out", str(out)]) == 1
    assert "1 of 1 classes did not converge" in capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["required_probability"] == 0.99 and summary["not_converged"] == ["goldfish"]
    assert [(r["converged"], r["attempts"]) for r in summary["classes"]] == [(False, 2)]
