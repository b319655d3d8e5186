"""Experiments of seeds 002 and 003 (weakgrad.experiments.surrogate): the exact expected loss
against a Monte-Carlo mean of the simulated stochastic network, the Yin-Yang grid inputs,
the settings' errors, and every claim check on data made to pass and made to fail it."""

import equinox as eqx
import jax
import numpy as np
import pytest

from weakgrad.errors import ConfigError
from weakgrad.experiments.claims import Verdict
from weakgrad.experiments.surrogate import (
    LoopSettings,
    MatchingSettings,
    TradeoffSettings,
    check_activity_cut_cheaply,
    check_cosine_peaks_at_match,
    check_surrogate_loop_nonzero,
    check_tradeoff_curve,
    check_true_loop_zero,
    escape_network,
    expected_loss,
    yinyang_grid_inputs,
)


def test_expected_loss_matches_the_simulated_mean():
    s = MatchingSettings(n_in=3, h1=3, h2=4, batch=6, spread_mv=2.0)
    obj = escape_network(s, jax.random.key(1))
    p = obj.params()
    exact = float(expected_loss(obj, p))
    keys = jax.random.split(jax.random.key(2), 4000)
    sim = np.asarray(eqx.filter_jit(lambda o, k: jax.vmap(lambda kk: o(p, kk))(k))(obj, keys))
    se = sim.std() / np.sqrt(sim.size)
    assert sim.std() > 0  # the network is noisy: the test can fail
    assert abs(sim.mean() - exact) < 4 * se, (sim.mean(), exact, se)


def test_yinyang_grid_inputs_put_one_spike_per_input():
    x = np.asarray([[0.0, 0.5, 1.0, 0.25]])
    grid = yinyang_grid_inputs(x, steps=30, dt_ms=1.0)
    assert grid.shape == (1, 30, 5)
    assert np.array_equal(grid.sum(1), np.ones((1, 5)))
    # spike times 2 + 10 v ms (2, 7, 12, 4.5) and the bias at 0 ms, on 1 ms steps
    steps = [int(np.argmax(grid[0, :, i])) for i in range(5)]
    assert steps == [2, 7, 12, 4, 0]


@pytest.mark.parametrize(
    ("cls", "kwargs", "field"),
    [
        (MatchingSettings, {"h1": 20}, "h1"),
        (MatchingSettings, {"factors": (0.5, 2.0, 4.0)}, "factors"),
        (MatchingSettings, {"beta_n": -1.0}, "beta_n"),
        (MatchingSettings, {"families": ("superspike",)}, "families"),
        (LoopSettings, {"steps": (64, 32)}, "steps"),
        (LoopSettings, {"radius": 0}, "radius"),
        (TradeoffSettings, {"weights": (0.1, 0.3, 1.0)}, "weights"),
        (TradeoffSettings, {"batch": 64, "train_size": 32}, "batch"),
    ],
)
def test_settings_refuse_bad_values(cls, kwargs, field):
    with pytest.raises(ConfigError, match=field):
        cls(**kwargs)


def _matching(cosines):
    c = np.asarray([cosines, cosines[::-1]])
    return {"families": ["sigmoid", "superspike"], "factors": np.asarray([0.25, 0.5, 1, 2, 4]),
            "mean_cosine": c}  # fmt: skip


def test_check_cosine_peaks_at_match():
    assert (
        check_cosine_peaks_at_match(_matching([0.5, 0.8, 0.95, 0.9, 0.7]))[0] is Verdict.REPRODUCED
    )
    assert check_cosine_peaks_at_match(_matching([0.5, 0.8, 0.9, 0.95, 0.7]))[0] is Verdict.PARTLY
    v, measured = check_cosine_peaks_at_match(_matching([0.99, 0.8, 0.9, 0.85, 0.7]))
    assert v is Verdict.NOT_REPRODUCED and "0.25" in measured


def _loops(sg_values, sg_previous, true_value, gap=0.0):
    """Two surrogate series and the true gradient; step counts (100, 400)."""
    n = 401
    angle = np.linspace(0, 2 * np.pi, n)
    loss = np.sin(angle[:-1] + 0.5 * np.diff(angle)) + 2.0
    run = np.concatenate([[0.0], np.cumsum(np.diff(np.sin(angle)))])
    run = run + gap * np.sin(3 * angle)
    integrals = [[p, v] for p, v in zip(sg_previous, sg_values, strict=True)]
    integrals.append([true_value, true_value])
    return {
        "betas": np.asarray([1.0, 2.0]),
        "integrals": np.asarray(integrals),
        "scale": np.asarray([1.0, 1.0, 4.0]),
        "running": np.asarray([run, run, run]),
        "path_loss": np.asarray([loss, loss, loss]),
    }


def test_check_surrogate_loop_nonzero():
    assert check_surrogate_loop_nonzero(_loops([0.1, 0.2], [0.101, 0.199], 0.0))[0] is (
        Verdict.REPRODUCED
    )
    # the second series has not converged: its change is as large as its value
    assert check_surrogate_loop_nonzero(_loops([0.1, 0.2], [0.101, 0.05], 0.0))[0] is (
        Verdict.PARTLY
    )
    assert check_surrogate_loop_nonzero(_loops([1e-5, 2e-5], [1e-5, 2e-5], 0.0))[0] is (
        Verdict.NOT_REPRODUCED
    )


def test_check_true_loop_zero():
    # exact cumulative integral of d(sin) matches sin(phi) - sin(0) at the midpoints to O(h^2)
    assert check_true_loop_zero(_loops([0.1, 0.2], [0.1, 0.2], 1e-7))[0] is Verdict.REPRODUCED
    assert check_true_loop_zero(_loops([0.1, 0.2], [0.1, 0.2], 1e-7, gap=0.1))[0] is (
        Verdict.PARTLY
    )
    assert check_true_loop_zero(_loops([0.1, 0.2], [0.1, 0.2], 0.05))[0] is (Verdict.NOT_REPRODUCED)


def _tradeoff(spikes, acc):
    return {"weights": np.asarray([0.0, 0.01, 0.1, 1.0]),
            "spikes_per_inference": np.asarray(spikes, float),
            "test_accuracy": np.asarray(acc, float)}  # fmt: skip


def test_check_tradeoff_curve():
    assert check_tradeoff_curve(_tradeoff([4, 3, 2, 1], [0.9, 0.88, 0.8, 0.5]))[0] is (
        Verdict.REPRODUCED
    )
    assert check_tradeoff_curve(_tradeoff([4, 3, 2, 1], [0.5, 0.8, 0.88, 0.9]))[0] is (
        Verdict.PARTLY
    )
    assert check_tradeoff_curve(_tradeoff([1, 2, 3, 4], [0.9, 0.88, 0.8, 0.5]))[0] is (
        Verdict.NOT_REPRODUCED
    )


def test_check_activity_cut_cheaply():
    assert check_activity_cut_cheaply(_tradeoff([6, 4, 1.9, 0.5], [0.9, 0.9, 0.88, 0.5]))[0] is (
        Verdict.REPRODUCED
    )
    assert check_activity_cut_cheaply(_tradeoff([6, 4, 2.9, 0.5], [0.9, 0.9, 0.86, 0.5]))[0] is (
        Verdict.PARTLY
    )
    v, measured = check_activity_cut_cheaply(_tradeoff([6, 5, 4, 0.5], [0.9, 0.9, 0.86, 0.5]))
    assert v is Verdict.NOT_REPRODUCED and "0.9" in measured
