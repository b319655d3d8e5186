"""Networks: the topologies are one object, simulate() records only what is asked,
bad input is named, blow-ups stop with a message."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakgrad as wg
from weakgrad.estimators.perturbations import LayerNoise, NodeNoise


def _run(net, inputs=None, steps=2000, dt=0.01, **kw):
    inputs = jnp.ones(net.n_in) if inputs is None else inputs
    return wg.simulate(net, inputs, dt=dt, steps=steps, **kw)


def test_complete_graph_with_zero_weights_is_independent_neurons():
    bias = jnp.array([0.0, 5.0, 10.0, 30.0, 80.0])
    hh = wg.HodgkinHuxley(noise_std=2.0)
    graph = wg.Network.complete_graph(5, hh, recurrent=0.0, bias=bias)
    indep = wg.Network.independent(5, hh, weight=0.0, bias=bias)
    key = jax.random.key(4)
    a, b = _run(graph, key=key), _run(indep, key=key)
    np.testing.assert_array_equal(a.counts[0], b.counts[0])
    np.testing.assert_allclose(a.mean_output[0], b.mean_output[0], rtol=1e-6)
    assert graph.layers[0].recurrent.shape == (5, 5)  # self-connections included


def test_recurrent_weights_follow_the_linear_recursion():
    """Linear units: x_t = x_{t-1} R + b with x_{-1} = 0 (recurrence uses the previous step)."""
    r = jnp.array([[0.5, -0.2, 0.1], [0.3, 0.2, 0.0], [-0.1, 0.4, 0.3]])
    b = jnp.array([1.0, -0.5, 0.25])
    net = wg.Network.complete_graph(3, wg.Linear(), recurrent=r, bias=b)
    tr = _run(net, steps=6, record=wg.Record(outputs=True))
    x, expected = np.zeros(3), []
    for _ in range(6):
        x = x @ np.asarray(r) + np.asarray(b)
        expected.append(x)
    np.testing.assert_allclose(tr.outputs[0], np.stack(expected), rtol=1e-5, atol=1e-6)


def test_chain_propagates_spikes_down_the_line():
    hh = wg.HodgkinHuxley(graded=False)
    net = wg.Network.chain(3, hh, weight=2000.0, input_weight=10.0)
    tr = _run(net, jnp.ones(1), steps=5000)
    first = int(tr.counts[0][0])
    assert first > 0
    assert [int(c[0]) for c in tr.counts[1:]] == [first, first]


def test_feedforward_shapes_and_inject_equals_bias():
    net = wg.Network.feedforward([3, 4, 2], wg.Sigmoid(), key=jax.random.key(0))
    x = jnp.array([0.5, -1.0, 2.0])
    base = _run(net, x, steps=3)
    assert [m.shape for m in base.mean_output] == [(4,), (2,)]
    shifted = eqx.tree_at(lambda n: n.layers[0].bias, net, net.layers[0].bias + 0.7)
    inj = _run(net, x, steps=3, perturb=wg.Inject(0, jnp.full((4,), 0.7)))
    np.testing.assert_allclose(
        inj.mean_output[1], _run(shifted, x, steps=3).mean_output[1], rtol=1e-6
    )
    per_step = _run(net, x, steps=3, perturb=wg.Inject(0, jnp.full((3, 4), 0.7)))
    np.testing.assert_allclose(per_step.mean_output[1], inj.mean_output[1], rtol=1e-6)


def test_exponential_synapse_low_pass():
    syn = wg.Exponential(tau=2.0)
    state = syn.init_state((1,))
    for _ in range(1000):
        state, current = syn.step(state, jnp.array([3.0]), 0.01)
    np.testing.assert_allclose(current, 3.0 * (1 - np.exp(-10.0 / 2.0)), rtol=1e-4)


def test_record_keeps_only_what_is_asked():
    net = wg.Network.independent(3, wg.HodgkinHuxley(), weight=jnp.array([0.0, 10.0, 50.0]))
    lean = _run(net, steps=500)
    assert lean.spikes is None and lean.voltages is None and lean.outputs is None
    full = _run(net, steps=500, record=wg.Record(spikes=True, voltages=True, outputs=True))
    assert full.spikes[0].shape == (500, 3) and full.voltages[0].shape == (500, 3)
    np.testing.assert_array_equal(full.spikes[0].sum(0), lean.counts[0])
    np.testing.assert_allclose(full.outputs[0].mean(0), lean.mean_output[0], rtol=1e-5)
    mv = _run(net, steps=500, record=wg.Record(mean_voltage=True))
    np.testing.assert_allclose(mv.mean_voltage[0], full.voltages[0].mean(0), rtol=1e-5)
    assert lean.mean_voltage is None and lean.currents is None


def test_recorded_currents_are_the_weighted_input():
    """With the instantaneous synapse, a layer's current is x @ W + b (+ recurrence): the
    recurrent linear network's current at step t is its output at step t."""
    r = jnp.array([[0.5, -0.2], [0.3, 0.2]])
    net = wg.Network.complete_graph(2, wg.Linear(), recurrent=r, bias=jnp.array([1.0, -0.5]))
    tr = _run(net, steps=4, record=wg.Record(outputs=True, currents=True))
    np.testing.assert_allclose(tr.currents[0], tr.outputs[0], rtol=1e-6)
    w = jnp.array([0.0, 10.0, 50.0])
    hh = _run(wg.Network.independent(3, wg.HodgkinHuxley(), weight=w), steps=5,
              record=wg.Record(currents=True))  # fmt: skip
    assert hh.currents[0].shape == (5, 3)
    np.testing.assert_allclose(hh.currents[0], np.broadcast_to(np.asarray(w), (5, 3)) * 1.0)


def test_vmap_over_keys_inputs_and_parameters():
    hh = wg.HodgkinHuxley(noise_std=3.0)

    def loss(w, key):
        return _run(wg.Network.independent(1, hh, weight=w), steps=1000, key=key).mean_output[0][0]

    keys = jax.random.split(jax.random.key(0), 4)
    ws = jnp.array([5.0, 10.0, 20.0])
    grid = jax.jit(jax.vmap(jax.vmap(loss, (None, 0)), (0, None)))(ws, keys)
    assert grid.shape == (3, 4)
    np.testing.assert_allclose(grid[1, 2], loss(ws[1], keys[2]), rtol=1e-5)
    assert len(np.unique(np.asarray(grid[1]))) == 4  # trials differ


def test_time_varying_input():
    net = wg.Network.independent(1, wg.HodgkinHuxley(), weight=1.0)
    x = jnp.concatenate([jnp.zeros((1000, 1)), jnp.full((4000, 1), 10.0)])
    tr = _run(net, x, steps=5000, record=wg.Record(spikes=True))
    times = tr.spike_times(0)[0]
    assert times.size > 0 and times[0] >= 10.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(dt=0.0), "dt must be a positive"),
        (dict(dt=-0.01), "dt must be a positive"),
        (dict(steps=0), "steps must be a positive int"),
        (dict(steps=-5), "steps must be a positive int"),
        (dict(steps=10.5), "steps must be a positive int"),
        (dict(inputs=jnp.ones(3)), r"inputs must have shape \(n_in,\) = \(1,\)"),
        (dict(inputs=jnp.ones((7, 1))), r"\(steps, n_in\) = \(10, 1\)"),
        (dict(dt=0.5), "above the 0.25 ms limit of HodgkinHuxley"),
        (dict(perturb=wg.Inject(0, jnp.ones(2))), r"Inject.current must have shape \(1,\)"),
        (dict(perturb=wg.Inject(3, jnp.ones(1))), "Inject.layer=3 is out of range"),
    ],
)
def test_bad_input_is_named(kwargs, match):
    net = wg.Network.independent(1, wg.HodgkinHuxley(), weight=10.0)
    args = dict(inputs=jnp.ones(1), dt=0.01, steps=10) | kwargs
    inputs = args.pop("inputs")
    with pytest.raises(ValueError, match=match):
        wg.simulate(net, inputs, **args)


def test_bad_shapes_in_layers_and_missing_key():
    with pytest.raises(ValueError, match=r"Layer.bias must have shape \(n_out,\) = \(3,\)"):
        wg.Layer(jnp.ones((2, 3)), jnp.ones(2), wg.Sigmoid())
    with pytest.raises(ValueError, match="layer 1 expects 5 inputs but layer 0 has 3"):
        wg.Network(
            (
                wg.Layer(jnp.ones((2, 3)), jnp.ones(3), wg.Sigmoid()),
                wg.Layer(jnp.ones((5, 1)), jnp.ones(1), wg.Sigmoid()),
            )
        )
    with pytest.raises(ValueError, match="pass key=jax.random.key"):
        _run(wg.Network.independent(1, wg.HodgkinHuxley(noise_std=1.0)), steps=10)


def test_unchecked_simulation_reports_validity_as_data():
    net = wg.Network.independent(2, wg.HodgkinHuxley(), weight=jnp.array([10.0, 1.0]))
    good = _run(net, jnp.ones(1), steps=100, check=False)
    bad = _run(net, jnp.array([jnp.nan]), steps=100, check=False)
    assert bool(good.valid) and not bool(bad.valid)


def test_blow_up_stops_with_a_message_also_under_jit():
    net = wg.Network.independent(2, wg.HodgkinHuxley(), weight=jnp.array([10.0, 1.0]))
    bad = jnp.array([jnp.nan])
    with pytest.raises(Exception, match="simulation blew up"):
        jax.block_until_ready(_run(net, bad, steps=100))
    # a transient excursion is caught even when the final state looks fine
    with pytest.raises(Exception, match="simulation blew up"):
        x = jnp.zeros((300, 1)).at[100].set(1e7)
        jax.block_until_ready(jax.jit(lambda x: _run(net, x, steps=300).counts)(x))


@pytest.mark.parametrize("hold", [1, 5, 20, 40], ids=["white", "blocks", "whole-run", "longer"])
def test_node_noise_is_the_injected_current_of_its_draws(hold):
    """NodeNoise adds std * sum_k w_k xi_k(t // hold) to the drive; the eligibility sums
    x(t)^T eta(t) and eta(t). Checked against Inject with the same currents drawn step by
    step (a noise held for the whole run is drawn once inside simulate)."""
    net = wg.Network.feedforward((4, 3, 2), wg.Sigmoid(), key=jax.random.key(0), scale=2.0)
    steps, x = 20, jnp.linspace(-1.0, 1.0, 4)
    words = jnp.moveaxis(wg.random.stream_keys(jax.random.key(1), (3, 2)), 0, 1)  # (K, 2, n)
    weights = jnp.array([0.5, -1.0, 2.0])
    layer_noise = LayerNoise(1, words, weights, 0.3, hold=hold)
    noise = NodeNoise((layer_noise,))
    eta = jnp.stack([layer_noise.eta(jnp.uint32(t), jnp.float32) for t in range(steps)])
    assert np.array_equal(np.asarray(eta[0]), np.asarray(eta[min(hold, steps) - 1]))
    assert hold >= steps or not np.array_equal(np.asarray(eta[0]), np.asarray(eta[hold]))
    record = wg.Record(outputs=True)
    noisy = _run(net, x, steps=steps, record=record, perturb=noise)
    ref = _run(net, x, steps=steps, record=record, perturb=wg.Inject(1, eta))
    np.testing.assert_allclose(np.asarray(noisy.outputs[1]), np.asarray(ref.outputs[1]), rtol=1e-6)
    traced = NodeNoise(
        (LayerNoise(1, words, weights, 0.3, inject=False, correlate=True, hold=hold),)
    )
    elig = _run(net, x, steps=steps, perturb=traced)
    hidden = np.asarray(ref.outputs[0])
    np.testing.assert_allclose(elig.perturbation[0]["bias"], np.asarray(eta).sum(0), rtol=1e-5)
    np.testing.assert_allclose(
        elig.perturbation[0]["weight"], hidden.T @ np.asarray(eta), rtol=1e-5, atol=1e-6
    )
