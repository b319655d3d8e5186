"""The counter-based generator: right mean, variance and shape, no correlation across
neurons, trials (keys) or steps."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakgrad.sim.random import StepKey, normal, uniform

N_NEURONS, N_STEPS = 512, 256


def _draws(seed=0, fn=normal, stream=0):
    key = StepKey.from_key(jax.random.key(seed), (N_NEURONS,)).fold(stream)
    return np.asarray(jax.vmap(lambda t: fn(key.at(t)))(jnp.arange(N_STEPS, dtype=jnp.uint32)))


def test_normal_mean_variance_and_moments():
    z = _draws().ravel().astype(np.float64)
    n = z.size
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.var() - 1) < 4 * math.sqrt(2 / n)
    assert abs((z**3).mean()) < 4 * math.sqrt(15 / n)  # skewness 0
    assert abs((z**4).mean() - 3) < 4 * math.sqrt(96 / n)  # kurtosis 3


def test_normal_matches_gaussian_cdf():
    z = np.sort(_draws(seed=5).ravel().astype(np.float64))
    n = z.size
    erf = np.vectorize(math.erf)
    cdf = 0.5 * (1 + erf(z / math.sqrt(2)))
    ks = np.max(np.abs(cdf - np.arange(1, n + 1) / n))
    assert ks < 1.63 / math.sqrt(n)  # Kolmogorov-Smirnov at the 1% level
    # tails: P(|Z| > 3) = 0.0027
    tail = np.mean(np.abs(z) > 3)
    assert abs(tail - 0.0027) < 5 * math.sqrt(0.0027 / n)


def test_uniform_mean_and_variance():
    u = _draws(fn=uniform).ravel().astype(np.float64)
    assert u.min() >= 0 and u.max() < 1
    assert abs(u.mean() - 0.5) < 4 * math.sqrt(1 / 12 / u.size)
    assert abs(u.var() - 1 / 12) < 0.002


def _corr(a, b):
    a = (a - a.mean(0)) / a.std(0)
    b = (b - b.mean(0)) / b.std(0)
    return a.T @ b / a.shape[0]


def test_no_correlation_across_neurons_steps_trials_and_streams():
    z = _draws(seed=1).astype(np.float64)  # (steps, neurons)
    bound = 5 / math.sqrt(N_STEPS)
    c = _corr(z, z)[np.triu_indices(N_NEURONS, 1)]  # 130k pairs, each ~N(0, 1/256)
    assert np.abs(c).max() < bound + 0.07
    assert abs(c.mean()) < 4 / math.sqrt(N_STEPS * c.size) * 4  # no shared component
    assert abs(c.std() - 1 / math.sqrt(N_STEPS)) < 0.003  # spread as for independent streams
    # across steps: lag-1 autocorrelation of every neuron's stream
    lag = np.mean(z[1:] * z[:-1], axis=0)
    assert abs(lag.mean()) < 4 / math.sqrt(N_STEPS * N_NEURONS)
    # across trials (keys) and independent streams for the same neurons and steps
    for other in (_draws(seed=2), _draws(seed=1, stream=1)):
        r = np.mean(z * other.astype(np.float64))
        assert abs(r) < 4 / math.sqrt(z.size)


def test_same_key_same_numbers_and_layout_independent():
    np.testing.assert_array_equal(_draws(seed=9), _draws(seed=9))
    key = StepKey.from_key(jax.random.key(9), (N_NEURONS,))
    # a neuron's number depends on its own words and the step only, not on the batch around it
    sub = StepKey(key.words[:, 10:20], key.step).at(17)
    np.testing.assert_array_equal(normal(sub), normal(key.at(17))[10:20])


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_dtype(dtype):
    with jax.enable_x64(dtype == jnp.float64):
        key = StepKey.from_key(jax.random.key(0), (3,))
        assert normal(key, dtype).dtype == dtype
        assert uniform(key, dtype).dtype == dtype
