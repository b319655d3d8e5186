"""The training experiments of study 000 (weakgrad.experiments.training): every claim's check
on data made to pass, to pass partly and to fail it; the settings refuse bad values naming
the field; the configs are the study's setting (regression sampling, alternating layers,
batch 10, S = 100) and agree with the shipped configs/mnist-hh-regression-*.toml; a tiny ANN
run through the training loop saves its files with the curve the loop wrote."""

import csv
import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from weakgrad.config import RegressionSection, load_config
from weakgrad.errors import ConfigError
from weakgrad.experiments import Verdict
from weakgrad.experiments.training import (
    AnnSettings,
    AnnTraining,
    HhLongTraining,
    HhSettings,
    HhShortTraining,
    ann_config,
    check_ann_comparable,
    check_ann_slower,
    check_ann_trains,
    check_hh_10ms_above_chance,
    check_hh_10ms_loss_goes_down,
    check_hh_50ms_above_100ms,
    check_hh_50ms_trains,
    check_hh_100ms_trains,
    hh_config,
    train_curve,
)

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
R, P, N = Verdict.REPRODUCED, Verdict.PARTLY, Verdict.NOT_REPRODUCED


def run(accs, steps=None, chance=0.1, n=400, loss=None, test=0.5):
    """A run's data as the experiments store it: validation accuracies at ``steps``."""
    steps = steps or [50 * (i + 1) for i in range(len(accs))]
    return {
        "loss": list(loss if loss is not None else np.linspace(2.3, 1.0, steps[-1])),
        "eval_step": list(steps),
        "val_accuracy": list(accs),
        "test_accuracy": test,
        "chance": chance,
        "eval_size": n,
        "batch_size": 10,
        "seconds": 1.0,
    }


def ann(reg, ad, marks=(50, 500)):
    steps = list(marks)
    return {"runs": {"regression": run(reg, steps), "autodiff": run(ad, steps)},
            "marks": list(marks), "size": "test"}  # fmt: skip


def hh(**runs):
    return {"runs": runs, "order": list(runs), "size": "test", "loss_batches": 200}


# --- claims: pass, partly, fail -----------------------------------------------------------


@pytest.mark.parametrize(
    "final, verdict",
    [(0.45, R), (0.25, P), (0.15, N), (0.05, N)],
    ids=["far", "some", "low", "below"],
)
def test_ann_trains(final, verdict):
    v, measured = check_ann_trains(ann([0.2, final], [0.5, 0.9]))
    assert v is verdict
    assert f"{100 * final:.1f}%" in measured and "test" in measured


def test_ann_trains_needs_3_standard_errors_on_few_digits():
    # 20 points above chance on 10 digits is within 3 SE (3 x 9.5 points): not reproduced
    data = ann([0.2, 0.3], [0.5, 0.9])
    for r in data["runs"].values():
        r["eval_size"] = 10
    assert check_ann_trains(data)[0] is N


@pytest.mark.parametrize(
    "reg, ad, verdict",
    [((0.5, 0.8), (0.6, 0.9), R), ((0.2, 0.8), (0.7, 0.9), P), ((0.2, 0.3), (0.7, 0.9), N)],
    ids=["both", "last-only", "neither"],
)
def test_ann_comparable(reg, ad, verdict):
    v, measured = check_ann_comparable(ann(reg, ad))
    assert v is verdict
    assert "50 batches" in measured and "500 batches" in measured


def test_ann_comparable_ratio_is_of_gains_over_chance():
    # autodiff 80%, chance 10%: regression at 46% gains 36 / 70 = 0.51 (comparable), at 44%
    # 34 / 70 = 0.49 (not); against accuracy itself both would pass (0.55 of 0.8)
    assert check_ann_comparable(ann((0.46, 0.46), (0.8, 0.8)))[0] is R
    assert check_ann_comparable(ann((0.44, 0.44), (0.8, 0.8)))[0] is N


@pytest.mark.parametrize(
    "reg, ad, verdict",
    [((0.3, 0.7), (0.6, 0.9), R), ((0.3, 0.88), (0.6, 0.9), P), ((0.6, 0.9), (0.6, 0.88), N)],
    ids=["always-behind", "behind-once", "never-behind"],
)
def test_ann_slower(reg, ad, verdict):
    assert check_ann_slower(ann(reg, ad))[0] is verdict


def test_ann_slower_uses_the_binomial_standard_error():
    # 400 digits at 80% and 86%: SE of the difference sqrt(.16/400 + .1204/400) = 2.65 points
    se = math.sqrt(0.8 * 0.2 / 400 + 0.86 * 0.14 / 400)
    assert 0.06 > 2 * se  # 6 points is significant at 400 digits
    assert check_ann_slower(ann((0.8, 0.8), (0.86, 0.86)))[0] is R
    data = ann((0.8, 0.8), (0.86, 0.86))
    for r in data["runs"].values():
        r["eval_size"] = 100  # 2 SE = 10.6 points: not significant
    assert check_ann_slower(data)[0] is N


def test_accuracy_at_a_mark_that_was_not_evaluated_is_an_error():
    data = ann((0.3, 0.7), (0.6, 0.9))
    data["marks"] = [60, 500]
    with pytest.raises(ValueError, match="no evaluation after 60 batches"):
        check_ann_slower(data)


@pytest.mark.parametrize(
    "check, key",
    [
        (check_hh_10ms_above_chance, "10ms"),
        (check_hh_100ms_trains, "100ms"),
        (check_hh_50ms_trains, "50ms"),
    ],  # fmt: skip
)
@pytest.mark.parametrize("final, verdict", [(0.35, R), (0.2, P), (0.12, N)])
def test_hh_above_chance(check, key, final, verdict):
    # the long experiment's runs in their order (100 ms, then 50 ms); the other run at
    # chance, so only the run the claim names can make it pass
    runs = {"100ms": run([0.1]), "50ms": run([0.1])} if key != "10ms" else {}
    runs[key] = run([0.1, final])
    v, measured = check(hh(**runs))
    assert v is verdict
    assert "chance 10.0%" in measured and f"HH {key}" in measured


def test_hh_above_chance_uses_the_majority_class_as_chance():
    # 35% against a validation set whose majority class is 25%: 10 points, partly; 40%
    # over chance 10% would be reproduced
    assert check_hh_10ms_above_chance(hh(**{"10ms": run([0.35], chance=0.25)}))[0] is P
    # 30% is 5 points above 25%, but within 3 SE (6.5 points on 400 digits)
    assert check_hh_10ms_above_chance(hh(**{"10ms": run([0.3], chance=0.25)}))[0] is N


def test_hh_loss_goes_down():
    # +-0.5 fluctuation (SE of a quarter's mean: 0.071; 2 SE of the difference: 0.2)
    wiggle = 0.5 * np.tile([1.0, -1.0], 100)
    t = np.arange(200)
    cases = [(2.3 - 0.01 * t, R), (2.3 - 0.0005 * t, P), (2.3 + 0.0 * t, N), (2.0 + 0.01 * t, N)]
    for trend, verdict in cases:
        v, measured = check_hh_10ms_loss_goes_down(hh(**{"10ms": run([0.2], loss=trend + wiggle)}))
        assert v is verdict, measured
        assert "first 50 of 200 batches" in measured


def test_hh_loss_reads_only_the_first_loss_batches():
    # down over the first 200 batches, then up again: the claim reads the first 200
    loss = np.concatenate([np.linspace(3.0, 1.0, 200), np.linspace(1.0, 5.0, 200)])
    data = hh(**{"10ms": run([0.2], steps=[400], loss=loss)})
    assert check_hh_10ms_loss_goes_down(data)[0] is R
    data["loss_batches"] = 400
    assert check_hh_10ms_loss_goes_down(data)[0] is N


@pytest.mark.parametrize("a50, a100, verdict", [(0.5, 0.3, R), (0.32, 0.3, P), (0.3, 0.32, N)])
def test_hh_50ms_above_100ms(a50, a100, verdict):
    v, measured = check_hh_50ms_above_100ms(hh(**{"100ms": run([a100]), "50ms": run([a50])}))
    assert v is verdict
    assert f"{100 * a50:.1f}%" in measured


# --- settings and configs -----------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, kwargs, field",
    [
        (AnnSettings, {"steps": 0}, "steps"),
        (AnnSettings, {"samples": 1.5}, "samples"),
        (AnnSettings, {"sigma": -1.0}, "sigma"),
        (AnnSettings, {"learning_rate": float("nan")}, "learning_rate"),
        (AnnSettings, {"marks": (50, 400)}, "marks"),  # last mark is not steps
        (AnnSettings, {"marks": (55, 500)}, "marks"),  # not a multiple of eval_every
        (AnnSettings, {"eval_every": 600}, "eval_every"),
        (HhSettings, {"runs": ((1.0, 2.0),)}, "dt_ms"),
        (HhSettings, {"runs": ()}, "runs"),
        (HhSettings, {"runs": ((10.0, 0.1), (10.0, 0.05))}, "repeats"),
        (HhSettings, {"layer_scale": (1.0, 0.0)}, "layer_scale"),
        (HhSettings, {"train_size": 0}, "train_size"),
    ],
)
def test_settings_refuse_bad_values_naming_the_field(cls, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        cls(**kwargs)


@pytest.mark.parametrize("exp", [AnnTraining(), HhShortTraining(), HhLongTraining()])
def test_full_presets_train_the_studys_way(exp):
    s = exp.full()
    assert s.batch_size == 10 and s.samples == 100 and s.size == "the study's sizes"
    if isinstance(s, AnnSettings):
        assert s.marks == (50, 500)
        cfgs = [ann_config(s, "regression")]
        assert ann_config(s, "autodiff").estimator.name == "autodiff"
    else:
        # the study's 1,000 simulation steps at dt 0.01 / 0.05 / 0.1 ms
        assert all(round(d / dt) == 1000 for d, dt in s.runs)
        cfgs = [hh_config(s, d, dt) for d, dt in s.runs]
    for cfg in cfgs:
        est = cfg.estimator
        assert isinstance(est, RegressionSection)
        assert (est.samples, est.alternate, cfg.train.batch_size) == (100, True, 10)
        built = est.build()
        assert type(built).__name__ == "Alternate"
        assert type(built.estimator).__name__ == "Regression" and built.estimator.samples == 100
    for preset in (exp.quick(), exp.tiny()):
        assert preset.size != "the study's sizes"  # reduced sizes say so


@pytest.mark.parametrize(
    "name, duration, dt, exp",
    [
        ("10ms", 10.0, 0.05, HhShortTraining()),
        ("50ms", 50.0, 0.05, HhLongTraining()),
        ("100ms", 100.0, 0.1, HhLongTraining()),
    ],  # fmt: skip
)
def test_shipped_regression_configs(name, duration, dt, exp):
    cfg = load_config(CONFIGS / f"mnist-hh-regression-{name}.toml")
    t, e, o, tr = cfg.task, cfg.estimator, cfg.optimizer, cfg.train
    assert (t.name, t.model, t.duration_ms, t.dt_ms) == ("mnist", "hh", duration, dt)
    assert isinstance(e, RegressionSection) and e.alternate and tr.batch_size == 10
    # the experiment's full preset trains with the same estimator and optimiser
    s = exp.full()
    assert (e.samples, e.sigma) == (s.samples, s.sigma)
    assert (o.name, o.learning_rate, o.layer_scale) == ("adam", s.learning_rate, s.layer_scale)


# --- a tiny run through the training loop -------------------------------------------------


def test_tiny_ann_run_saves_the_loops_curve_and_continues_after_a_kill(tmp_path):
    from weakgrad.tasks.mnist import load_mnist

    exp = AnnTraining()
    s = exp.tiny()
    result = exp.run(s)
    record = result.save(tmp_path, seconds=1.0)
    assert [c["id"] for c in record["claims"]] == [c.id for c in exp.claims]
    y = load_mnist(None, seed=s.seed).y_val[: s.eval_size]
    for name in ("regression", "autodiff"):
        r = result.data["runs"][name]
        assert r["chance"] == pytest.approx(np.bincount(y).max() / len(y))
        assert r["eval_step"] == list(s.marks) and len(r["loss"]) == s.steps
        with open(tmp_path / f"training_{name}.csv") as f:
            rows = list(csv.DictReader(f))
        assert [int(x["batches_done"]) for x in rows] == list(range(1, s.steps + 1))
        assert [float(x["batch_loss"]) for x in rows] == pytest.approx(r["loss"], rel=1e-6)
        evals = [float(x["val_accuracy"]) for x in rows if x["val_accuracy"]]
        assert evals == pytest.approx(r["val_accuracy"])
    configs = json.loads((tmp_path / "configs.json").read_text())
    assert configs["regression"]["estimator"] == {
        "name": "regression", "samples": 4, "sigma": 0.01, "alternate": True, "antithetic": False,
    }  # fmt: skip
    assert (tmp_path / "ann_training.png").stat().st_size > 1000

    class Killed(Exception):
        pass

    def killed_then_resumed(call: int, scratch) -> tuple:
        """Kill at the ``call``-th progress report, run again: (result, steps trained)."""
        calls = []

        def kill(done):
            calls.append(done)
            if len(calls) == call:
                raise Killed

        with pytest.raises(Killed):
            exp.run_resumable(s, scratch, progress=kill)
        done = []
        return exp.run_resumable(s, scratch, progress=done.append), done

    # Killed after 3 of 4 regression steps (its checkpoint is at 2): trains steps 3-4 of
    # regression and all of autodiff again.
    again, done = killed_then_resumed(3, tmp_path / "partial")
    assert done == [3, 4, 1, 2, 3, 4]
    # Killed at autodiff's first step, regression finished: only autodiff trains again.
    third, done = killed_then_resumed(5, tmp_path / "partial2")
    assert done == [1, 2, 3, 4]
    # Both end with the uninterrupted run's curves.
    for name in ("regression", "autodiff"):
        for run in (again, third):
            a, b = run.data["runs"][name], result.data["runs"][name]
            for k in ("loss", "eval_step", "val_accuracy", "test_accuracy"):
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name} {k}")
    # A run of another config in the folder is replaced, not continued (nor refused).
    other = ann_config(dataclasses.replace(s, learning_rate=10 * s.learning_rate), "regression")
    curve = train_curve(other, tmp_path / "partial" / "regression")
    assert curve.loss[0] == result.data["runs"]["regression"]["loss"][0]  # same start
    assert curve.loss[-1] != result.data["runs"]["regression"]["loss"][-1]
    assert len(curve.loss) == s.steps
