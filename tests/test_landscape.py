"""The 1-D sweep of the single-neuron task: trial statistics, determinism, files."""

import jax
import numpy as np

from weakgrad.analysis.landscape import Landscape1D, sweep_1d
from weakgrad.sim.neurons import HodgkinHuxley
from weakgrad.tasks import SingleNeuronTurnOff

TASK = SingleNeuronTurnOff(HodgkinHuxley(noise_std=20.0), tau_ms=20.0, dt_ms=0.025)
W = np.linspace(0.2, 1.0, 5)


def test_sem_shrinks_like_one_over_sqrt_trials():
    small = sweep_1d(TASK.evaluate_trials, W, trials=16, key=jax.random.key(0))
    large = sweep_1d(TASK.evaluate_trials, W, trials=256, key=jax.random.key(1))
    ratio = np.mean(small.loss_sem) / np.mean(large.loss_sem)
    assert 2.5 < ratio < 6.0  # sqrt(256 / 16) = 4


def test_same_seed_same_numbers_and_chunking_does_not_matter():
    a = sweep_1d(TASK.evaluate_trials, W, trials=3, key=jax.random.key(7), chunk=2)
    again = sweep_1d(TASK.evaluate_trials, W, trials=3, key=jax.random.key(7), chunk=2)
    np.testing.assert_array_equal(a.loss_mean, again.loss_mean)
    # another batch size compiles to differently vectorised code: equal to rounding
    b = sweep_1d(TASK.evaluate_trials, W, trials=3, key=jax.random.key(7), chunk=5)
    np.testing.assert_allclose(a.loss_mean, b.loss_mean, rtol=1e-6)
    np.testing.assert_array_equal(a.spikes_mean, b.spikes_mean)
    c = sweep_1d(TASK.evaluate_trials, W, trials=3, key=jax.random.key(8))
    assert not np.array_equal(a.loss_mean, c.loss_mean)


def test_single_trial_has_nan_sem_and_csv_round_trip(tmp_path):
    task = SingleNeuronTurnOff(tau_ms=30.0)
    res = sweep_1d(
        task.evaluate_trials, W, trials=1, key=jax.random.key(0), current=lambda w: w * task.i0
    )
    assert np.all(np.isnan(res.loss_sem))
    np.testing.assert_allclose(res.current, W * 34.6)
    path = res.to_csv(tmp_path / "l.csv")
    back = Landscape1D.from_csv(path)
    np.testing.assert_allclose(back.loss_mean, res.loss_mean, rtol=1e-7)
    assert not list(tmp_path.glob("*.tmp"))


def test_firing_stops_near_w_1_8():
    task = SingleNeuronTurnOff(tau_ms=200.0)
    w = np.array([1.0, 1.7, 1.78, 1.83, 1.9, 2.5])
    res = sweep_1d(task.evaluate_trials, w, trials=1, key=jax.random.key(0))
    spikes = res.spikes_mean
    assert spikes[0] > 10 and spikes[2] > 10  # repetitive up to w = 1.78
    assert np.all(spikes[3:] <= 5)  # only onset transients from w = 1.83


def test_sweep_compiles_once_whatever_the_last_chunk():
    traces = []

    def counting(w, keys):
        traces.append(w.shape)  # runs only when jit traces
        return TASK.evaluate_trials(w, keys)

    res = sweep_1d(counting, np.linspace(0.2, 1.0, 10), trials=2, key=jax.random.key(0), chunk=4)
    assert len(traces) == 1 and res.loss_mean.shape == (10,)
