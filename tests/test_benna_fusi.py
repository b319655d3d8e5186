"""The Benna-Fusi chain (weakgrad.memory): the exponential synapse's closed forms (m = 1),
charge conservation and linear response of the chain, the 1/sqrt(t) law on a long chain,
the stochastic simulation against the closed forms, and input validation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakgrad.memory import (
    BennaFusiChain,
    capacity,
    exponential_capacity,
    fit_exponent,
    memory_noise,
    memory_signal,
    simulate,
    snr,
    trace_power,
)


@pytest.mark.parametrize("tau,cap", [(8.0, 1.0), (50.0, 2.0)])
def test_one_variable_is_the_exponential_synapse(tau, cap):
    chain = BennaFusiChain.exponential(tau, capacity=cap)
    t = np.array([0.0, 1.0, 3.5, 20.0, 100.0])
    r = np.exp(-t / tau) / cap
    np.testing.assert_allclose(chain.kernel(t), r, rtol=1e-6)
    q = np.exp(-2.0 / tau)
    power = 1.0 / (cap**2 * (1.0 - q))  # sum_k r(k)^2 to infinity
    np.testing.assert_allclose(trace_power(chain), power, rtol=1e-6)
    n = 1000.0
    closed = np.sqrt(n) * r / np.sqrt(power - r**2)
    np.testing.assert_allclose(snr(chain, t, n), closed, rtol=1e-6)
    # finite past: only the memories after the tracked one (ages 0..t-1) are noise
    k = np.arange(0, 20)
    direct = np.sqrt(np.sum((np.exp(-k / tau) / cap) ** 2) / n)
    np.testing.assert_allclose(memory_noise(chain, 20.0, n, past=0), direct, rtol=1e-6)
    # capacity: the closed form (the SNR does not depend on the capacity C), SNR = 1 there
    ns = np.array([10.0, 1e3, 1e6])
    c = capacity(chain, ns)
    np.testing.assert_allclose(c, exponential_capacity(tau, ns), rtol=1e-7)
    live = c > 0
    np.testing.assert_allclose(snr(chain, c[live], ns[live]), 1.0, rtol=1e-6)
    assert np.all(snr(chain, 0.0, ns[~live]) < 1.0)  # capacity 0: SNR starts below 1
    # geometric(1) is the exponential synapse of tau = C_1 / g_12 = 8
    np.testing.assert_allclose(BennaFusiChain.geometric(1).kernel(t), np.exp(-t / 8.0), rtol=1e-6)


def test_exponential_capacity_closed_form():
    tau, n = 20.0, np.array([5.0, 100.0, 1e5])
    t = exponential_capacity(tau, n)
    np.testing.assert_allclose(t, capacity(BennaFusiChain.exponential(tau), n), rtol=1e-7)
    q = np.exp(-2 * t / tau)
    s2 = n * q / (1 / (1 - np.exp(-2 / tau)) - q)
    np.testing.assert_allclose(s2[t > 0], 1.0, rtol=1e-9)
    # SNR(0)^2 = N (1 - q) / q = 0.41 for tau = 50, N = 10: capacity 0
    assert capacity(BennaFusiChain.exponential(50.0), 10.0) == 0.0
    assert exponential_capacity(50.0, 10.0) == 0.0


def test_geometric_parameters_and_charge_conservation():
    chain = BennaFusiChain.geometric(5)
    k = np.arange(1, 6)
    np.testing.assert_allclose(chain.capacities, 2.0 ** (k - 1))
    np.testing.assert_allclose(chain.conductances, 2.0 ** (-k - 2))
    a = np.asarray(chain.rate_matrix(), np.float64)
    c = np.asarray(chain.capacities, np.float64)
    # total charge sum_k C_k u_k changes only by the leak of the last variable
    leak = np.zeros(5)
    leak[-1] = -float(chain.conductances[-1])
    np.testing.assert_allclose(c @ a, leak, atol=1e-7)
    rates, weights = chain.modes()
    np.testing.assert_allclose(np.sort(np.linalg.eigvals(a).real), np.sort(-rates), rtol=1e-4)
    # linear response: r(0) = 1 / C_1 and the integral of r is the series resistance
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.sum(weights / rates), np.sum(1.0 / chain.conductances), rtol=1e-6)
    assert np.all(np.diff(chain.kernel(np.linspace(0, 1e4, 200))) < 0)


def test_step_matrix_is_the_exponential_of_the_rate_matrix():
    with jax.enable_x64(True):
        chain = BennaFusiChain.geometric(4, dtype=jnp.float64)
        e = chain.step_matrix(3.0)
        assert e.dtype == jnp.float64
        np.testing.assert_allclose(e, jax.scipy.linalg.expm(3.0 * chain.rate_matrix()), rtol=1e-9)
        # propagating a unit charge in u_1 gives the kernel
        u = np.zeros(4)
        u[0] = 1.0
        out = []
        for _ in range(5):
            out.append(u[0])
            u = np.asarray(chain.step_matrix(1.0)) @ u
        np.testing.assert_allclose(out, chain.kernel(np.arange(5.0)), rtol=1e-9)
    assert BennaFusiChain.geometric(3).step_matrix().dtype == jnp.float32


def test_trace_power_partial_sums_and_steady_state():
    chain = BennaFusiChain.geometric(3)
    k = np.arange(0, 41)
    np.testing.assert_allclose(trace_power(chain, 40), np.sum(chain.kernel(k) ** 2), rtol=1e-10)
    np.testing.assert_allclose(trace_power(chain, 1e7), trace_power(chain), rtol=1e-10)
    far = memory_noise(chain, 5.0, 100, past=1e7)
    np.testing.assert_allclose(far, memory_noise(chain, 5.0, 100), rtol=1e-10)
    # more synapses: same signal, noise down by sqrt(N)
    np.testing.assert_allclose(
        memory_noise(chain, 5.0, 400) * 2, memory_noise(chain, 5.0, 100), rtol=1e-12
    )


def test_long_chain_decays_as_inverse_sqrt_t():
    t = np.logspace(0, 5, 51)
    e, _ = fit_exponent(t, snr(BennaFusiChain.geometric(10), t, 1e6), 10.0, 1e4)
    assert abs(e + 0.5) <= 0.1, e
    # the exponential synapse does not: it falls off a cliff after tau = 8
    e1, _ = fit_exponent(t, memory_signal(BennaFusiChain.geometric(1), t), 10.0, 100.0)
    assert e1 < -1.0
    # a short chain stops following the law past its slowest time scale
    e3, _ = fit_exponent(t, memory_signal(BennaFusiChain.geometric(3), t), 1e3, 1e4)
    assert e3 < -1.0


def test_capacity_grows_with_chain_length_and_synapses():
    n = np.array([1e3, 1e6])
    c4, c10 = capacity(BennaFusiChain.geometric(4), n), capacity(BennaFusiChain.geometric(10), n)
    assert np.all(np.diff(c10) > 0)
    assert c10[1] > 10 * c4[1]  # the 4-variable chain saturates near its slowest time scale
    np.testing.assert_allclose(snr(BennaFusiChain.geometric(10), c10, n), 1.0, rtol=1e-6)


@pytest.mark.parametrize("m", [1, 3])
def test_simulation_matches_closed_forms(m):
    chain = BennaFusiChain.geometric(m)
    n, trials, past = 64, 512, 30
    sim = simulate(chain, n, 25, key=jax.random.key(3), trials=trials, burn_in=past)
    a = sim.ages
    assert sim.overlaps.shape == (trials, 26)
    signal, se = sim.signal(), sim.signal_error()
    assert np.all(np.abs(signal - memory_signal(chain, a)) < 4.5 * se + 1e-6)
    np.testing.assert_allclose(sim.noise(), memory_noise(chain, a, n, past=past), rtol=0.15)
    # the same key gives the same runs
    again = simulate(chain, n, 25, key=jax.random.key(3), trials=trials, burn_in=past)
    np.testing.assert_array_equal(again.overlaps, sim.overlaps)


def test_bad_input_names_the_field():
    with pytest.raises(ValueError, match="capacities"):
        BennaFusiChain(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="conductances"):
        BennaFusiChain([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="capacities must be finite and > 0"):
        BennaFusiChain([1.0, -2.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="conductances must be finite"):
        BennaFusiChain([1.0], [np.nan])
    with pytest.raises(ValueError, match="m must be an integer >= 1"):
        BennaFusiChain.geometric(0)
    with pytest.raises(ValueError, match="ratio"):
        BennaFusiChain.geometric(3, ratio=-1.0)
    with pytest.raises(ValueError, match="tau"):
        BennaFusiChain.exponential(0.0)
    chain = BennaFusiChain.geometric(2)
    with pytest.raises(ValueError, match="t \\(the memory's age"):
        chain.kernel(-1.0)
    with pytest.raises(ValueError, match="n_synapses"):
        snr(chain, 1.0, 0)
    with pytest.raises(ValueError, match="past"):
        memory_noise(chain, 1.0, 10, past=-1)
    with pytest.raises(ValueError, match="threshold"):
        capacity(chain, 10, threshold=0.0)
    with pytest.raises(ValueError, match="fewer than 3 points"):
        fit_exponent([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], 1.5, 2.5)
    with pytest.raises(ValueError, match="t_min < t_max"):
        fit_exponent([1.0, 2.0, 3.0], [1.0, 1.0, 1.0], 3.0, 2.0)
    with pytest.raises(ValueError, match="trials must be an integer >= 2"):
        simulate(chain, 4, 3, key=jax.random.key(0), trials=1)
    with pytest.raises(ValueError, match="n_synapses must be an integer >= 1"):
        simulate(chain, 0, 3, key=jax.random.key(0))
