"""Contract tests over every neuron model, and each model against its closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakgrad as wg
from weakgrad.sim.neurons import all_neurons, lif_rate
from weakgrad.sim.random import StepKey
from weakgrad.sim.surrogates import SuperSpike

NEURONS = all_neurons()
IDS = [f"{type(n).__name__}-{i}" for i, n in enumerate(NEURONS)]


def _key(shape, step=0):
    return StepKey.from_key(jax.random.key(3), shape, step)


@pytest.mark.parametrize("neuron", NEURONS, ids=IDS)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_step_keeps_shape_and_dtype(neuron, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        state = neuron.init_state((4, 3), dtype)
        current = jnp.linspace(0, 20, 12, dtype=dtype).reshape(4, 3)
        new, out = neuron.step(state, current, 0.01, key=_key((4, 3)))
        for leaf in jax.tree.leaves((new, out)):
            assert leaf.shape == (4, 3)
            assert leaf.dtype == dtype
        assert neuron.voltage(new).dtype == dtype


@pytest.mark.parametrize("neuron", NEURONS, ids=IDS)
def test_step_under_jit_and_vmap_equals_eager(neuron):
    state = neuron.init_state((5,))
    current = jnp.linspace(0.0, 30.0, 5)
    key = _key((5,), step=7)
    eager = neuron.step(state, current, 0.05, key=key)
    jitted = jax.jit(lambda s, c, k: neuron.step(s, c, 0.05, key=k))(state, current, key)
    vmapped = jax.vmap(
        lambda s, c, w: neuron.step(s, c, 0.05, key=StepKey(w, key.step)), in_axes=(0, 0, 1)
    )(state, current, key.words)
    leaves = [jax.tree.leaves(t) for t in (eager, jitted, vmapped)]
    for a, b, c in zip(*leaves, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("neuron", NEURONS, ids=IDS)
def test_deterministic_for_a_key_and_stochastic_models_differ_across_keys(neuron):
    net = wg.Network.independent(50, neuron, weight=jnp.linspace(0, 30, 50))

    def run(seed):
        tr = wg.simulate(net, jnp.ones(1), dt=0.05, steps=400, key=jax.random.key(seed))
        return np.asarray(tr.mean_output[0])

    np.testing.assert_array_equal(run(0), run(0))
    if neuron.stochastic:
        assert not np.array_equal(run(0), run(1))
    else:
        np.testing.assert_array_equal(run(0), run(1))


def test_hh_starts_at_rest_with_steady_state_gates():
    hh = wg.HodgkinHuxley()
    s = hh.init_state((1,))
    new, out = hh.step(s, jnp.zeros(1), 0.01)
    # At rest with no input every variable stays (nearly) put.
    np.testing.assert_allclose(new.v, -65.0, atol=0.02)
    np.testing.assert_allclose(new.m, s.m, atol=1e-5)
    assert float(out.spike[0]) == 0.0


def test_hh_f_i_curve_shape():
    """Zero below rheobase, rising through repetitive firing, at most the onset spike above
    the 0 mV cutoff (~62.5 uA/cm^2)."""
    currents = jnp.array([0.0, 1.0, 2.0, 10.0, 20.0, 40.0, 60.0, 70.0, 100.0, 150.0])
    net = wg.Network.independent(currents.size, wg.HodgkinHuxley(), weight=currents)
    counts = np.asarray(wg.simulate(net, jnp.ones(1), dt=0.01, steps=50_000).counts[0])
    assert counts[:3].tolist() == [0, 0, 0]
    repetitive = counts[3:7]
    assert np.all(np.diff(repetitive) > 0) and repetitive[0] >= 20  # > 40 Hz over 500 ms
    assert np.all(counts[8:] <= 1)


def test_hh_graded_release_is_differentiable_through_time():
    """Over a short timeframe autodiff of the mean release matches a finite difference."""

    def loss(w):
        net = wg.Network.independent(1, wg.HodgkinHuxley(), weight=w)
        return wg.simulate(net, jnp.ones(1), dt=0.01, steps=500).mean_output[0][0]

    with jax.enable_x64(True):
        w = jnp.float64(8.0)
        g = jax.grad(loss)(w)
        eps = 1e-4
        fd = (loss(w + eps) - loss(w - eps)) / (2 * eps)
        assert np.isfinite(g)
        np.testing.assert_allclose(g, fd, rtol=1e-6)
        assert loss(w).dtype == jnp.float64


def test_hh_spikes_carry_the_surrogate_derivative_graded_or_not():
    """Spike-train readouts read HH spikes: with a surrogate their count has a gradient
    with respect to the drive, for graded (release-sending) neurons too; without one the
    exact spike has none. The forward values do not change."""

    def count(w, graded, surrogate):
        hh = wg.HodgkinHuxley(graded=graded).with_surrogate(surrogate)
        net = wg.Network.independent(1, hh, weight=w)
        trace = wg.simulate(net, jnp.ones(1), dt=0.05, steps=60, record=wg.Record(spikes=True))
        return trace.spikes[0].sum()

    w = jnp.float32(20.0)  # a spike within the first 3 ms
    for graded in (True, False):
        assert float(jax.grad(count)(w, graded, SuperSpike())) != 0.0
        assert float(jax.grad(count)(w, graded, None)) == 0.0
        assert float(count(w, graded, SuperSpike())) == float(count(w, graded, None)) > 0


def test_hh_rates_finite_with_gradients_at_removable_singularities():
    from weakgrad.sim.neurons.hodgkin_huxley import rates

    for v in (-40.0, -55.0):
        vals = rates(jnp.float32(v))
        grads = jax.jacfwd(rates)(jnp.float32(v))
        assert all(np.isfinite(x) for x in vals) and all(np.isfinite(x) for x in grads)
    np.testing.assert_allclose(rates(jnp.float32(-40.0))[0], 1.0, rtol=1e-6)  # alpha_m limit
    np.testing.assert_allclose(rates(jnp.float32(-55.0))[4], 0.1, rtol=1e-6)  # alpha_n limit


@pytest.mark.parametrize("current", [1.6, 2.0, 3.0, 5.0])
def test_lif_matches_closed_form_rate(current):
    lif = wg.LIF()
    dt, steps = 0.001, 200_000  # 200 ms
    net = wg.Network.independent(1, lif, weight=current)
    count = int(wg.simulate(net, jnp.ones(1), dt=dt, steps=steps).counts[0][0])
    expected = float(lif_rate(lif, current)) * dt * steps
    # Discrete time adds at most one step per interspike interval.
    isi = 1.0 / float(lif_rate(lif, current))
    assert expected * isi / (isi + dt) - 1 <= count <= expected + 1


def test_lif_subthreshold_is_silent_and_subtractive_reset_keeps_overshoot():
    net = wg.Network.independent(1, wg.LIF(), weight=1.4)  # r_m*I = 14 mV < 15 mV gap
    assert int(wg.simulate(net, jnp.ones(1), dt=0.1, steps=5000).counts[0][0]) == 0
    lif = wg.LIF(subtractive=True)
    v, out = lif.step(jnp.array([-50.5]), jnp.array([100.0]), 0.1)
    assert out.spike[0] == 1
    assert float(v[0]) > lif.v_reset  # overshoot kept


def test_escape_noise_firing_probability_matches_sigmoid():
    neuron = wg.EscapeNoiseLIF(beta=0.5, theta=-55.0)
    v_hold = jnp.linspace(-62.0, -48.0, 8)
    # Hold V: current giving V_inf = v_hold, state at v_hold, one step, many neurons.
    n = 20_000
    state = jnp.broadcast_to(v_hold, (n, 8))
    current = jnp.broadcast_to((v_hold - neuron.v_rest) / neuron.r_m, (n, 8))
    _, out = neuron.step(state, current, 0.1, key=_key((n, 8), step=11))
    p_hat = np.asarray(out.spike.mean(axis=0))
    p = np.asarray(neuron.spike_probability(v_hold))
    se = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(p_hat - p) < 5 * se + 1e-4), (p_hat, p)


def test_rate_units():
    x = jnp.array([-2.0, 0.0, 3.0])
    s = jnp.zeros(3)
    assert wg.Perceptron().step(s, x, 1.0)[1].value.tolist() == [0.0, 0.0, 1.0]
    np.testing.assert_allclose(wg.Sigmoid().step(s, x, 1.0)[1].value, jax.nn.sigmoid(x))
    np.testing.assert_allclose(wg.Linear().step(s, x, 1.0)[1].value, x)


def test_bad_neuron_parameters_are_named():
    with pytest.raises(ValueError, match="noise_std"):
        wg.HodgkinHuxley(noise_std=-1.0)
    with pytest.raises(ValueError, match="key"):
        noisy = wg.HodgkinHuxley(noise_std=1.0)
        noisy.step(noisy.init_state((1,)), jnp.zeros(1), 0.01)
