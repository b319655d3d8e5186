"""NLB-format evaluation (issue 16): co-bps against a closed form and synthetic Poisson
data, NLB-layout NWB files written with pynwb and read back, and a network trained by a
weak gradient scored by co-bps on held-out trials."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from weakgrad.estimators import Regression
from weakgrad.objectives.base import Objective
from weakgrad.tasks.nlb import (
    NlbData,
    bits_per_spike,
    poisson_log_likelihood,
    read_nlb_nwb,
    synthetic_nlb,
    write_nlb_nwb,
)
from weakgrad.tasks.spike_trains import NwbFileError
from weakgrad.training.optim import standard_promotion


def test_bits_per_spike_closed_form():
    # One neuron, two bins with 1 and 3 spikes; the saturated model (rates = counts)
    # against the null rate 2: gain 3 ln 3 - 4 ln 2 nats over 4 spikes.
    counts = np.array([1.0, 3.0]).reshape(1, 2, 1)
    expected = (3 * np.log(3) - 4 * np.log(2)) / (4 * np.log(2))
    assert bits_per_spike(counts, counts) == pytest.approx(expected, rel=1e-12)
    assert bits_per_spike(np.full_like(counts, 2.0), counts) == pytest.approx(0.0, abs=1e-12)
    ll = poisson_log_likelihood(np.array([2.0]), np.array([3.0]))
    assert ll == pytest.approx(3 * np.log(2) - 2 - np.log(6), rel=1e-12)


def test_true_rates_beat_the_null_and_shuffled_rates():
    _, heldout, rates = synthetic_nlb(0, trials=200)
    true = bits_per_spike(rates, heldout)
    shuffled = bits_per_spike(rates[np.random.default_rng(1).permutation(200)], heldout)
    assert true > 0.02 and shuffled < true
    with pytest.raises(ValueError, match="no spike"):
        bits_per_spike(np.ones((1, 2, 1)), np.zeros((1, 2, 1)))
    with pytest.raises(ValueError, match=r"\(trials, bins, neurons\)"):
        bits_per_spike(np.ones((2, 1)), np.ones((2, 1)))


def test_nlb_layout_file_round_trip(tmp_path):
    heldin, heldout, _ = synthetic_nlb(2, trials=5, bins=20, heldin=3, heldout=2)
    path = write_nlb_nwb(tmp_path / "nlb.nwb", heldin, heldout, bin_ms=5.0, align_offset_ms=20.0)
    data = read_nlb_nwb(path, align="move_onset_time", window_ms=(-20.0, 80.0), bin_ms=5.0)
    assert isinstance(data, NlbData)
    np.testing.assert_array_equal(data.heldin, heldin)
    np.testing.assert_array_equal(data.heldout, heldout)
    with pytest.raises(NwbFileError, match="no trials column 'go_cue'"):
        read_nlb_nwb(path, align="go_cue")
    with pytest.raises(NwbFileError, match="does not exist"):
        read_nlb_nwb(tmp_path / "missing.nwb")


def test_weak_gradient_model_scores_positive_co_bps_on_held_out_trials(tmp_path):
    """Held-out rates predicted from the held-in counts of the same bin (a linear map and an
    exponential), fitted by the regression weak gradient on the Poisson NLL of 30 trials,
    scored on 30 others from the NWB file: co-bps above 0, near the true rates' score."""
    heldin, heldout, rates = synthetic_nlb(3, trials=60, bins=60, heldin=12, heldout=4)
    path = write_nlb_nwb(tmp_path / "nlb.nwb", heldin, heldout, align_offset_ms=0.0)
    data = read_nlb_nwb(path, window_ms=(0.0, 300.0), bin_ms=5.0)
    x = jnp.asarray(data.heldin, jnp.float32)
    y = jnp.asarray(data.heldout, jnp.float32)
    xs = x.reshape(-1, x.shape[-1])
    # Smooth the held-in counts over +/- 2 bins: single-bin counts are too noisy an input.
    kernel = jnp.ones(5, jnp.float32) / 5
    smooth = jax.vmap(jax.vmap(lambda s: jnp.convolve(s, kernel, mode="same"), 1, 1))(x)
    mean, std = xs.mean(0), xs.std(0) + 1e-6

    def predict(p, xin):
        return jnp.exp(((xin - mean) / std) @ p["w"] + p["b"])

    train = slice(0, 30)

    def nll(p, key):
        r = predict(p, smooth[train])
        return jnp.mean(r - y[train] * jnp.log(r))

    params = {"w": jnp.zeros((12, 4)), "b": jnp.log(y[train].mean((0, 1)) + 1e-3)}
    est = Regression(sigma=0.05, samples=120)
    opt = standard_promotion(optax.adam(0.05))
    obj = Objective(nll)

    @jax.jit
    def step(p, s, key):
        g, _, _ = est.estimate(obj, p, (), key=key)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    state = opt.init(params)
    for k in jax.random.split(jax.random.key(0), 150):
        params, state = step(params, state, k)
    test = slice(30, 60)
    score = bits_per_spike(np.asarray(predict(params, smooth[test])), data.heldout[test])
    best = bits_per_spike(rates[test], heldout[test])
    assert 0.0 < score <= best + 0.02, (score, best)
