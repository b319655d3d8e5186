"""The Yin-Yang data set (geometry, rejection sampling, splits, spike-time encoding) and the
yinyang task through its config."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from weakgrad.config import ConfigError, config_from_dict, load_config
from weakgrad.tasks.base import batch_indices
from weakgrad.tasks.yinyang import (
    YinYangEncoder,
    YinYangTask,
    encode_spike_times,
    yinyang_class,
    yinyang_points,
    yinyang_splits,
)


def test_class_geometry_at_known_points():
    """r_big = 0.5, r_small = 0.1: the eyes at (0.25, 0.5) and (0.75, 0.5) are dots; the
    upper half away from the right half-disc and the left half-disc around the left eye
    are yin (0); the right eye's half-disc and the lower half are yang (1)."""
    pts = {
        (0.25, 0.5): 2, (0.75, 0.5): 2, (0.78, 0.53): 2,  # dots
        (0.5, 0.9): 0, (0.25, 0.68): 0, (0.12, 0.5): 0,  # yin
        (0.5, 0.1): 1, (0.75, 0.33): 1, (0.88, 0.5): 1,  # yang
    }  # fmt: skip
    x, y = np.array(list(pts)).T
    assert yinyang_class(x, y).tolist() == list(pts.values())
    # Point symmetry about the centre swaps yin and yang and keeps the dots.
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 1, (2, 4000))
    inside = np.hypot(x - 0.5, y - 0.5) < 0.5
    c, c_flip = yinyang_class(x, y)[inside], yinyang_class(1 - x, 1 - y)[inside]
    swap = np.array([1, 0, 2])
    on_edge = np.abs(y[inside] - 0.5) < 1e-9
    assert (swap[c] == c_flip)[~on_edge].mean() > 0.999


def test_rejection_sampling_balances_classes_whatever_their_area():
    feats, labels = yinyang_points(6000, np.random.default_rng(0))
    x, y = feats[:, 0], feats[:, 1]
    assert feats.shape == (6000, 4) and labels.shape == (6000,)
    np.testing.assert_allclose(feats[:, 2:], 1 - feats[:, :2])
    assert (np.hypot(x - 0.5, y - 0.5) <= 0.5).all()
    assert (yinyang_class(x, y) == labels).all()
    frac = np.bincount(labels, minlength=3) / len(labels)
    np.testing.assert_allclose(frac, 1 / 3, atol=0.03)  # goal classes drawn uniformly
    # ...although the dots cover 2 pi 0.1^2 / (pi 0.5^2) = 8 % of the disc.
    u = np.random.default_rng(2).uniform(0, 1, (2, 20000))
    u = u[:, np.hypot(u[0] - 0.5, u[1] - 0.5) <= 0.5]
    assert np.mean(yinyang_class(*u) == 2) == pytest.approx(0.08, abs=0.01)
    with pytest.raises(ValueError, match="r_small < r_big / 2"):
        yinyang_points(5, np.random.default_rng(0), r_small=0.3)


def test_splits_have_the_published_sizes_and_are_seeded():
    a, b, c = yinyang_splits(0), yinyang_splits(0), yinyang_splits(1)
    assert (len(a.x_train), len(a.x_val), len(a.x_test)) == (5000, 1000, 1000)
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert not np.allclose(a.x_test, c.x_test)
    assert not np.allclose(a.x_train[:1000], a.x_val)  # each split its own stream


def test_spike_time_encoding():
    f = np.array([[0.0, 1.0, 0.25, 0.5]])
    t = encode_spike_times(f, t_early=2.0, t_late=12.0, t_bias=1.0)
    np.testing.assert_allclose(t, [[2.0, 12.0, 4.5, 7.0, 1.0]])
    with pytest.raises(ValueError, match="t_early < t_late"):
        encode_spike_times(f, t_early=5.0, t_late=5.0)


SMALL = ["task.name=yinyang", "task.hidden=6", "task.max_events=64", "train.batch_size=4",
         "train.eval_size=20", "task.train_size=40"]  # fmt: skip


def test_task_from_config_trains_with_eventprop(tmp_path):
    from weakgrad.training.loop import train

    cfg = load_config(None, [*SMALL, 'estimator={name="eventprop"}', "train.steps=2"])
    task = cfg.task.build(cfg)
    assert isinstance(task, YinYangTask) and cfg.task.n_layers == 2
    params = task.initial_params()
    assert [p["weight"].shape for p in params] == [(5, 6), (6, 3)]
    obj = task.objective_at(7)
    assert obj.inputs.shape == (4, 5) and obj.targets.shape == (4,)
    np.testing.assert_array_equal(task.objective_at(7).inputs, obj.inputs)  # a function of step
    loss, acc = task.validate(params, jax.random.key(0))
    assert np.isfinite(loss) and 0 <= acc <= 1
    assert config_from_dict(cfg.to_dict()) == cfg
    # The config's spike times reach the task's encoder and its batches.
    timed = load_config(None, [*SMALL, "task.t_early_ms=1.0", "task.t_late_ms=9.0",
                               "task.t_bias_ms=0.5"])  # fmt: skip
    t2 = timed.task.build(timed)
    assert t2.encoder == YinYangEncoder(t_early=1.0, t_late=9.0, t_bias=0.5)
    with pytest.raises(TypeError, match="encoder must be an AbstractSpikeEncoder"):
        YinYangTask(t2.data, t2.objective, {"t_early": 1.0}, batch_size=4, eval_size=20)
    idx = batch_indices(7, 40, 4, 0)
    np.testing.assert_allclose(
        t2.objective_at(7).inputs, t2.encoder(t2.x_train[idx]).astype(np.float32)
    )
    over = [*SMALL, 'estimator={name="eventprop"}', "train.steps=3", "train.eval_every=3"]
    summary = train(load_config(None, over), tmp_path / "run")
    assert summary["steps"] == 3 and 0 <= summary["test_accuracy"] <= 1
    assert summary["test_size"] == 1000 and summary["lost_spike_examples"] == 0
    figures = summary.figures()
    assert "yinyang.png" in figures
    import matplotlib.pyplot as plt

    for fig in figures.values():
        plt.close(fig)


def test_config_sections_check_their_keys():
    with pytest.raises(ConfigError, match="task.tau_mem_ms = 5.0 equals task.tau_syn_ms"):
        load_config(None, ["task.name=yinyang", "task.tau_mem_ms=5.0"])
    with pytest.raises(ConfigError, match="task.loss = 'van-rossum' is not allowed"):
        load_config(None, ["task.name=yinyang", "task.loss='van-rossum'"])
    with pytest.raises(ConfigError, match="estimator.surrogate = 'magic' is not allowed"):
        load_config(None, ['estimator={name="surrogate", surrogate="magic"}'])
    from weakgrad.estimators import EventProp, SurrogateGradient

    assert isinstance(load_config(None, ['estimator={name="eventprop"}']).estimator.build(),
                      EventProp)  # fmt: skip
    est = load_config(None, ['estimator={name="surrogate", beta=3.0}']).estimator.build()
    assert isinstance(est, SurrogateGradient) and est.surrogate.beta == 3.0
