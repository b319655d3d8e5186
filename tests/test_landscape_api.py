"""Landscape API: directions, 2-D sweeps, trial statistics, the complete graph, bands."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakgrad as wg
from weakgrad.analysis.landscape import (
    Landscape2D,
    along,
    detect_bands,
    random_direction,
    sweep_1d,
    sweep_2d,
)
from weakgrad.tasks import CompleteGraphTurnOff, SingleNeuronTurnOff


def _graph(n=3, **kw):
    return CompleteGraphTurnOff(n, bias=10.0, tau_ms=30.0, dt_ms=0.05, **kw)


def test_two_d_sweep_equals_one_d_sweeps_on_its_axes():
    task = _graph()
    base = task.uniform(2.0)
    k1, k2 = jax.random.split(jax.random.key(0))
    d1, d2 = random_direction(k1, base), random_direction(k2, base)
    grid = np.linspace(-3, 3, 5)  # contains 0
    key = jax.random.key(1)
    two = sweep_2d(task.evaluate_trials, base, d1, d2, grid, grid, trials=1, key=key)
    one_a = sweep_1d(along(task.evaluate_trials, base, d1), grid, trials=1, key=key)
    one_b = sweep_1d(along(task.evaluate_trials, base, d2), grid, trials=1, key=key)
    np.testing.assert_allclose(two.loss_mean[:, 2], one_a.loss_mean, rtol=1e-6)
    np.testing.assert_allclose(two.loss_mean[2, :], one_b.loss_mean, rtol=1e-6)
    assert two.loss_mean.shape == (5, 5) and np.ptp(two.loss_mean) > 0


def test_landscape_2d_round_trips(tmp_path):
    r = Landscape2D(
        np.arange(3.0), np.arange(4.0), np.ones((3, 4)), np.zeros((3, 4)), np.ones((3, 4)), 1
    )
    r.to_npz(tmp_path / "l.npz")
    back = Landscape2D.from_npz(tmp_path / "l.npz")
    np.testing.assert_array_equal(back.loss_mean, r.loss_mean)
    r.to_csv(tmp_path / "l.csv")
    assert len((tmp_path / "l.csv").read_text().splitlines()) == 1 + 12


def test_filter_normalised_direction_matches_the_weight_scale():
    w = jnp.asarray(np.random.default_rng(0).normal(size=(6, 4)) * np.array([1, 2, 3, 0]))
    d = random_direction(jax.random.key(0), {"w": w, "b": jnp.ones(4)})
    norms = np.linalg.norm(np.asarray(d["w"]), axis=0)
    np.testing.assert_allclose(norms[:3], np.linalg.norm(np.asarray(w), axis=0)[:3], rtol=1e-5)
    assert norms[3] == pytest.approx(1.0, rel=1e-5)  # a zero column keeps unit norm
    assert np.linalg.norm(np.asarray(d["b"])) == pytest.approx(2.0, rel=1e-5)
    raw = random_direction(jax.random.key(0), w, filter_normalize=False)
    assert (np.asarray(raw) < 0).any() and (np.asarray(raw) > 0).any()  # Gaussian, two-sided


def test_standard_error_shrinks_like_one_over_sqrt_trials():
    task = SingleNeuronTurnOff(wg.HodgkinHuxley(noise_std=5.0), tau_ms=20.0, dt_ms=0.05)
    w = np.linspace(0.5, 1.5, 4)
    sems = []
    for n in (8, 128):
        r = sweep_1d(task.evaluate_trials, w, trials=n, key=jax.random.key(0))
        sems.append(r.loss_sem.mean())
    assert sems[0] / sems[1] == pytest.approx(4.0, rel=0.3)


def test_complete_graph_with_zero_weights_is_independent_neurons():
    task = _graph(n=4)
    loss, spikes = task.evaluate(task.uniform(0.0), jax.random.key(0))
    single = wg.Network.independent(1, wg.HodgkinHuxley(), weight=0.0, bias=10.0)
    single = wg.Network(
        (
            wg.Layer(
                single.layers[0].weight, single.layers[0].bias, wg.HodgkinHuxley(), task.synapse
            ),
        )
    )
    trace = wg.simulate(single, jnp.zeros(1), dt=0.05, steps=600)
    assert float(loss) == pytest.approx(float(trace.mean_output[0][0]), rel=1e-5)
    assert float(spikes) == pytest.approx(float(trace.counts[0][0]))
    # Coupling changes it.
    coupled, _ = task.evaluate(task.uniform(100.0), jax.random.key(0))
    assert abs(float(coupled) - float(loss)) > 1e-4


def test_band_detection_on_synthetic_curves():
    w = np.linspace(0, 1, 400)
    smooth = 1 + w**2
    assert detect_bands(w, smooth).max_count == 1
    jump = np.where(w > 0.5, 0.0, 1.0) + w
    assert detect_bands(w, jump).max_count == 1
    rng = np.random.default_rng(0)
    branches = 1 + w + 0.5 * rng.integers(0, 3, size=w.size)  # three interleaved branches
    bands = detect_bands(w, branches)
    assert bands.max_count == 3 and np.all(bands.count == 3)


def test_self_coupled_neuron_zoom_splits_into_bands():
    # The study's "multi-function": a single self-coupled HH neuron, fine zoom.
    task = CompleteGraphTurnOff(1, bias=10.0, tau_ms=1000.0)
    w = np.linspace(183.5, 186.0, 200)
    r = sweep_1d(
        along(task.evaluate_trials, task.uniform(0.0), task.uniform(1.0)),
        w,
        trials=1,
        key=jax.random.key(0),
    )
    assert detect_bands(r.w, r.loss_mean, window=40).max_count >= 2


def test_single_neuron_trials_as_one_network_equal_separate_simulations():
    # evaluate_trials simulates all (w, trial) pairs as one network with explicit noise
    # streams; each pair must see what evaluate() gives it alone (same noise, same spikes).
    task = SingleNeuronTurnOff(wg.HodgkinHuxley(noise_std=5.0), tau_ms=30.0, dt_ms=0.02)
    w = jnp.linspace(0.2, 2.5, 5)
    keys = jax.random.split(jax.random.key(3), 3)
    loss, count = jax.jit(task.evaluate_trials)(w, keys)
    for i in range(5):
        for j in range(3):
            l1, c1 = task.evaluate(w[i], keys[j])
            assert float(loss[i, j]) == pytest.approx(float(l1), rel=1e-5, abs=1e-9)
            assert int(count[i, j]) == int(c1)
    assert np.ptp(np.asarray(loss[2])) > 0  # trials differ


def test_explicit_streams_are_validated():
    net = wg.Network.independent(3, wg.HodgkinHuxley(noise_std=1.0))
    with pytest.raises(
        ValueError, match=r"streams\[0\] must be uint32 key words of shape \(2, 3\)"
    ):
        wg.simulate(net, jnp.ones(1), dt=0.01, steps=2, streams=(jnp.zeros((2, 2), jnp.uint32),))
