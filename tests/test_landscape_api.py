"""Landscape API: directions, 2-D sweeps, trial statistics, the complete graph, bands."""

from __future__ import annotations

import json

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


def test_firing_stop_on_synthetic_spike_counts():
    from weakgrad.analysis.landscape import firing_stop

    w = np.linspace(0, 3, 7)
    # onset at w=0.5, repetitive firing peaks at w=1, falls below half the peak at w=2.5
    assert firing_stop(w, np.array([0, 40, 60, 50, 35, 2, 1])) == pytest.approx(2.5)
    assert firing_stop(w, np.array([0, 40, 60, 60, 55, 50, 45])) is None  # never halves


def _curve(w, loss, spikes=None):
    from weakgrad.analysis.landscape import Landscape1D

    spikes = np.zeros_like(w) if spikes is None else spikes
    return Landscape1D(w, w * 34.6, loss, np.full(w.shape, np.nan), spikes, 1)


def test_landscape_settings_resolve_defaults_and_refuse_bad_values():
    from weakgrad.analysis.landscape import LandscapeSettings
    from weakgrad.errors import ConfigError

    s = LandscapeSettings()
    assert (s.w_min, s.w_max, s.points, s.evaluations) == (0.0, 3.0, 301, 301)
    g = LandscapeSettings(task="complete-graph")
    assert (g.w_min, g.w_max) == (-50.0, 300.0) and g.as_dict()["direction"] == "uniform"
    r = LandscapeSettings(task="complete-graph", direction="random", w_max=2)
    assert (r.w_min, r.w_max) == (-1.0, 2.0)
    two = LandscapeSettings(task="complete-graph", neurons=2, two_d=True)
    assert (two.points, two.evaluations) == (51, 51 * 51)
    z = LandscapeSettings(zoom=(1, 2), w_min=0.0)
    assert (z.w_min, z.w_max) == (1.0, 2.0) and z.as_dict()["zoom"] == [1.0, 2.0]
    with pytest.raises(ConfigError, match="above the 0.25 ms limit"):
        LandscapeSettings(dt_ms=0.3, tau_ms=10.0)
    with pytest.raises(ConfigError, match="--mollify smooths 1-D curves"):
        LandscapeSettings(task="complete-graph", neurons=2, two_d=True, mollify=0.1)
    with pytest.raises(ConfigError, match="below the grid spacing"):
        LandscapeSettings(points=4, mollify=0.5)  # spacing 1


def test_single_neuron_study_summarises_where_firing_stops_and_saves(tmp_path):
    from weakgrad.analysis.landscape import LandscapeSettings, LandscapeStudy

    w = np.linspace(0, 3, 7)
    spikes = np.array([0, 40, 60, 50, 35, 2, 1.0])
    settings = LandscapeSettings(points=7, tau_ms=20.0)
    r = LandscapeStudy(settings, _curve(w, spikes / 100, spikes))
    assert r.summary() == "7 points x 1 trial; repetitive firing stops near w=2.5"
    files = r.save(tmp_path)
    assert files == [tmp_path / "landscape.csv", tmp_path / "landscape.png"]
    assert {p.name for p in tmp_path.iterdir()} == {
        "landscape.csv", "landscape.png", "landscape.json", "manifest.json",
    }  # fmt: skip
    meta = json.loads((tmp_path / "landscape.json").read_text())
    assert meta == settings.as_dict() and meta["i0"] == 34.6 and "max_bands" not in meta
    flat = LandscapeStudy(settings, _curve(w, w, np.full(7, 60.0)))
    assert flat.summary().endswith("repetitive firing does not stop in this range")


def test_complete_graph_study_finds_the_bands_and_writes_them(tmp_path):
    from weakgrad.analysis.landscape import LandscapeSettings, LandscapeStudy
    from weakgrad.analysis.mollify import BumpKernel, mollify_curve

    w = np.linspace(0, 1, 400)
    rng = np.random.default_rng(0)
    loss = 1 + w + 0.5 * rng.integers(0, 3, size=w.size)  # three interleaved branches
    settings = LandscapeSettings(task="complete-graph", w_min=0, w_max=1, points=400, mollify=0.1)
    smooth = mollify_curve(w, loss, BumpKernel(0.1))
    bands = detect_bands(w, loss, window=40)
    r = LandscapeStudy(settings, _curve(w, loss), smooth, bands)
    assert r.summary().startswith("400 points x 1 trial; up to 3 loss bands (multi-valued)")
    r.save(tmp_path)
    meta = json.loads((tmp_path / "landscape.json").read_text())
    assert meta["max_bands"] == 3 and meta["mollify"] == 0.1 and meta["neurons"] == 1
    rows = (tmp_path / "bands.csv").read_text().splitlines()
    assert rows[0] == "w,bands" and len(rows) == 1 + 10 and rows[1].endswith(",3")
    moll = (tmp_path / "landscape_mollified.csv").read_text().splitlines()
    assert moll[0] == "w,loss_mean,loss_mollified,valid" and len(moll) == 401
    one = LandscapeStudy(settings, _curve(w, 1 + w**2), None, detect_bands(w, 1 + w**2))
    assert one.summary().endswith("one loss band everywhere")


def test_two_d_study_saves_grid_files(tmp_path):
    from weakgrad.analysis.landscape import LandscapeSettings, LandscapeStudy

    settings = LandscapeSettings(task="complete-graph", neurons=2, two_d=True, points=3)
    loss = np.arange(9.0).reshape(3, 3)
    grid = np.linspace(-1, 1, 3)
    r = LandscapeStudy(settings, Landscape2D(grid, grid, loss, loss * 0, loss, 1))
    assert r.summary() == "3 x 3 points; loss 0 to 8"
    assert r.save(tmp_path) == [tmp_path / "landscape2d.csv", tmp_path / "landscape2d.png"]
    assert {p.name for p in tmp_path.iterdir()} == {
        "landscape2d.csv", "landscape2d.png", "landscape2d.npz", "landscape.json", "manifest.json",
    }  # fmt: skip
    assert json.loads((tmp_path / "landscape.json").read_text())["two_d"] is True


def test_landscape_study_runs_the_single_neuron_sweep():
    from weakgrad.analysis.landscape import LandscapeSettings, landscape_study

    done = []
    settings = LandscapeSettings(w_min=1.0, w_max=2.5, points=4, tau_ms=200.0)
    r = landscape_study(settings, progress=done.append)
    assert sum(done) == 4 and r.bands is None and r.mollified is None
    np.testing.assert_allclose(r.curve.current, r.curve.w * 34.6)
    assert "repetitive firing stops near w=2" in r.summary()  # 1.0 fires, 2.0 does not
