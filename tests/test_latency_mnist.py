"""Latency-coded MNIST (issue 17): the time-to-first-spike encoding against its closed form,
"no spike" (inf) as the event simulation takes it, the task's data (built-in digits and IDX
files), batches and config errors, and EventProp on the 784-H-10 network against central
finite differences in float64."""

from __future__ import annotations

import gzip

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from weakgrad.config import ConfigError, config_from_dict, load_config
from weakgrad.estimators import EventProp
from weakgrad.objectives.events import FirstSpikeTimes, MaxVoltage
from weakgrad.sim.event_lif import EventNetwork
from weakgrad.tasks.latency_mnist import (
    LatencyEncoder,
    LatencyMnistTask,
    latency_mnist_objective,
    latency_spike_times,
)
from weakgrad.tasks.mnist import MnistFileMissing, load_mnist

KEY = jax.random.key(0)


def test_encoding_bright_pixels_early_dim_pixels_not_at_all():
    v = np.array([[1.0, 0.5, 0.2, 0.19999, 0.0, 0.75]])
    t = latency_spike_times(v, t_early=2.0, t_late=12.0, threshold=0.2)
    # t = t_early + (1 - v) (t_late - t_early) at and above the threshold; inf below it.
    np.testing.assert_allclose(t, [[2.0, 7.0, 10.0, np.inf, np.inf, 4.5]])
    t0 = latency_spike_times(v, t_early=0.0, t_late=5.0, threshold=0.0)  # every pixel spikes
    np.testing.assert_allclose(t0, [[0.0, 2.5, 4.0, 5.0 - 5.0 * 0.19999, 5.0, 1.25]])
    # The built-in digits: the spike times fill [t_early, t_early + (1 - thr)(t_late - t_early)].
    x = load_mnist(None).x_test[:50]
    t = LatencyEncoder()(x)
    spiking = np.isfinite(t)
    np.testing.assert_array_equal(spiking, x >= 0.2)
    assert t[spiking].min() == 2.0 and t[spiking].max() <= 10.0 + 1e-9
    assert 29 <= spiking.sum(1).min() and spiking.sum(1).max() <= 275  # digits, not noise
    with pytest.raises(ValueError, match=r"intensities must lie in \[0, 1\].*divide 8-bit"):
        latency_spike_times(np.array([[0.0, 255.0]]))
    with pytest.raises(ValueError, match=r"\(1 not finite\)"):  # NaN is not "no spike"
        latency_spike_times(np.array([[np.nan, 0.5]]))
    with pytest.raises(ValueError, match=r"threshold = 1.5 must be in \[0, 1\]"):
        LatencyEncoder(threshold=1.5)
    with pytest.raises(ValueError, match="t_early < t_late"):
        LatencyEncoder(t_early=5.0, t_late=5.0)


def test_no_spike_input_is_inf_and_has_no_effect_nor_gradient():
    """An input at inf never enters the event loop: the run equals the run without that
    input (its weights zeroed), EventProp's gradient of its weights is exactly 0 and every
    other component is finite and equal."""
    with jax.enable_x64(True):
        net = EventNetwork(sizes=(3, 4, 2), recurrent=(False, False), spiking_output=False,
                           max_events=32)  # fmt: skip
        rng = np.random.default_rng(3)
        w1 = jnp.asarray(rng.uniform(1.0, 6.0, (3, 4)))
        params = ({"weight": w1}, {"weight": jnp.asarray(rng.normal(0, 2.0, (4, 2)))})
        silenced = ({"weight": w1.at[1].set(0.0)}, params[1])
        x = jnp.asarray([[1.0, np.inf, 3.0]])
        obj = _objective(net, params, x)
        (a, g), (b, g0) = _run(obj, params), _run(obj, silenced)
        assert int(a.counts[0, :4].sum()) > 0  # hidden neurons fire
        np.testing.assert_array_equal(a.vmax, b.vmax)
        np.testing.assert_array_equal(a.counts, b.counts)
        assert int(a.slots[0]) == 2 + int(a.counts[0].sum()) + 1  # two inputs and the end
        assert np.isfinite(np.asarray(ravel_pytree(g)[0])).all()
        w1 = np.asarray(g[0]["weight"])
        assert (w1[1] == 0).all() and np.abs(w1[[0, 2]]).max() > 0
        np.testing.assert_array_equal(ravel_pytree(g)[0], ravel_pytree(g0)[0])


@eqx.filter_jit
def _run(obj, params):
    return obj.traces(params), EventProp().estimate(obj, params, (), key=KEY)[0]


def _objective(net, params, x):
    from weakgrad.objectives.events import EventObjective
    from weakgrad.objectives.losses import SoftmaxCrossEntropy

    y = jnp.zeros(len(x), jnp.int32)
    return EventObjective(net, params, x, y, SoftmaxCrossEntropy(scale=2.0), MaxVoltage())


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


SMALL = ["task.name='latency-mnist'", "task.hidden=5", "train.batch_size=4", "train.eval_size=3"]


def test_idx_files_through_data_dir_and_deterministic_batches(tmp_path):
    rng = np.random.default_rng(0)
    images = {}
    for name, n in [("train", 40), ("t10k", 6)]:
        x = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        images[name] = x
        _write_idx(tmp_path / f"{name}-images-idx3-ubyte.gz", x)
        _write_idx(tmp_path / f"{name}-labels-idx1-ubyte", rng.integers(0, 10, n))
    cfg = load_config(None, [*SMALL, f"task.data_dir='{tmp_path}'", "task.train_size=8"])
    task = cfg.task.build(cfg)
    assert isinstance(task, LatencyMnistTask) and cfg.task.n_layers == 2
    assert task.source() == f"{tmp_path} (latency-coded)"
    # The official test split is the t10k file, encoded pixel by pixel.
    np.testing.assert_array_equal(task.data.x_test * 255, images["t10k"].reshape(6, 784))
    assert [p["weight"].shape for p in task.initial_params()] == [(784, 5), (5, 10)]
    # Step 0 and 1 are one epoch of the 8 training digits: each digit once, encoded.
    x8 = task.data.x_train[:8]
    codes = LatencyEncoder()(x8).astype(np.float32)
    seen = []
    for step in (0, 1):
        obj = task.objective_at(step)
        assert obj.inputs.shape == (4, 784) and obj.inputs.dtype == jnp.float32
        for row, label in zip(np.asarray(obj.inputs), np.asarray(obj.targets), strict=True):
            (i,) = [k for k in range(8) if np.array_equal(codes[k], row)]
            assert label == task.data.y_train[i]
            seen.append(i)
        np.testing.assert_array_equal(task.objective_at(step).inputs, obj.inputs)  # same step
    assert sorted(seen) == list(range(8))
    assert not np.array_equal(task.objective_at(2).inputs, task.objective_at(0).inputs)
    assert config_from_dict(cfg.to_dict()) == cfg


def test_bad_config_values_name_the_field_and_the_fix(tmp_path):
    with pytest.raises(ConfigError, match=r"task.pixel_threshold = 1.5 must be in \[0, 1\]"):
        load_config(None, [*SMALL, "task.pixel_threshold=1.5"])
    with pytest.raises(ConfigError, match="task.t_bias_ms does not apply to task.name = "
                       "'latency-mnist'; it is a key of the yinyang task"):  # fmt: skip
        load_config(None, [*SMALL, "task.t_bias_ms=1.0"])
    with pytest.raises(ConfigError, match="task.tau_mem_ms = 5.0 equals task.tau_syn_ms"):
        load_config(None, [*SMALL, "task.tau_mem_ms=5.0"])
    with pytest.raises(ConfigError, match="task.t_early_ms = 12.0 must be below task.t_late_ms"):
        load_config(None, [*SMALL, "task.t_early_ms=12.0"])
    with pytest.raises(ConfigError, match="task.loss = 'van-rossum' is not allowed; choose"):
        load_config(None, [*SMALL, "task.loss='van-rossum'"])
    with pytest.raises(ConfigError, match="task.hidden = 0 must be > 0"):
        load_config(None, [*SMALL, "task.hidden=0"])
    cfg = load_config(None, [*SMALL, "task.train_size=3"])
    with pytest.raises(ConfigError, match="train.batch_size = 4 exceeds the 3 training digits"):
        cfg.task.build(cfg)
    cfg = load_config(None, [*SMALL, "train.eval_size=401"])
    with pytest.raises(ConfigError, match="train.eval_size = 401 exceeds the 400 validation"):
        cfg.task.build(cfg)
    cfg = load_config(None, [*SMALL, f"task.data_dir='{tmp_path / 'nowhere'}'"])
    with pytest.raises(MnistFileMissing, match="nowhere does not exist"):
        cfg.task.build(cfg)


@eqx.filter_jit
def _compare(obj, params, directions, h):
    """EventProp's gradient and central differences of the loss along ``directions`` (one
    vmapped population), with the spike counts of every run."""
    grads, _, _ = EventProp().estimate(obj, params, (), key=KEY)
    theta, unravel = ravel_pytree(params)
    thetas = jnp.concatenate([theta[None], theta + h * directions, theta - h * directions])

    def one(th):
        trace = obj.traces(unravel(th))
        return jnp.mean(jax.vmap(obj.loss)(obj.read(trace), obj.targets)), trace.counts

    losses, counts = jax.vmap(one)(thetas)
    k = len(directions)
    return ravel_pytree(grads)[0], (losses[1 : k + 1] - losses[k + 1 :]) / (2 * h), counts


@pytest.mark.parametrize("loss", ["max-voltage", "first-spike"])
def test_eventprop_on_latency_mnist_matches_central_differences_in_float64(loss):
    """A 784-4-10 network on two built-in digits (about 130 input spikes each, the rest of
    the 784 inputs at inf): the derivative of the loss along random directions of all
    weights and along each output weight equals EventProp's gradient projected on them.
    First-spike: output weights N(8, 0.4^2), so that one hidden spike makes an output fire
    (the default 4 / sqrt(4) = 2 leaves them silent: no first spike time to move)."""
    data = load_mnist(None)
    x, y = data.x_train[:2], data.y_train[:2]
    with jax.enable_x64(True):
        obj = latency_mnist_objective(
            x, y, hidden=4, key=jax.random.key(1), loss=loss, max_events=64, dtype=jnp.float64,
            out_mean=8.0 if loss == "first-spike" else None,
        )  # fmt: skip
        assert isinstance(obj.read, FirstSpikeTimes if loss == "first-spike" else MaxVoltage)
        params = obj.params()
        d = ravel_pytree(params)[0].size
        rng = np.random.default_rng(0)
        # 4 random unit directions, then the 40 output weights (the last coordinates).
        dirs = rng.normal(size=(4, d))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        dirs = np.concatenate([dirs, np.eye(d)[-40:]])
        g, fd, counts = _compare(obj, params, jnp.asarray(dirs), 1e-6)
        counts = np.asarray(counts)
        assert (counts == counts[0]).all()  # no spike appears or disappears within the step
        assert (counts[0, :, :4].sum(1) > 0).all()  # hidden neurons fire on both digits
        if loss == "first-spike":
            assert (counts[0, :, 4:].sum(1) > 0).all()  # output first spike times to move
        proj, fd = dirs @ np.asarray(g), np.asarray(fd)
        assert np.abs(fd[:4]).min() > 1e-4 and (np.abs(fd[4:]) > 1e-4).sum() >= 10
        np.testing.assert_allclose(proj, fd, rtol=1e-6, atol=1e-10)
