"""Contract tests over the lists of all implementations: synapses, surrogates, losses,
readouts, and the optax-style estimator contract (compile once, state structure kept
under ``lax.cond``). Neurons, estimators' numerics and tasks have their own files."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakgrad as wg
from weakgrad.estimators import all_estimators, network_estimators
from weakgrad.objectives.base import Objective
from weakgrad.objectives.losses import OneHotMSE, all_losses
from weakgrad.objectives.network import MeanOutput, MeanVoltage, NetworkObjective, SpikeTrains
from weakgrad.sim.surrogates import all_surrogates, spike_with_surrogate
from weakgrad.sim.synapses import Exponential, all_synapses
from weakgrad.tasks.spike_trains import all_spike_losses


def _name(x):
    return f"{type(x).__name__}({', '.join(f'{k}={v}' for k, v in vars(x).items())})"


@pytest.mark.parametrize("syn", all_synapses(), ids=_name)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
def test_synapse_keeps_dtype_and_approaches_a_held_drive(syn, dtype):
    with jax.enable_x64(dtype == jnp.float64):
        state = syn.init_state((3,), dtype)
        drive = jnp.asarray([1.0, -2.0, 0.5], dtype)
        dt, currents = 0.1, []
        for _ in range(40):
            state, current = syn.step(state, drive, dt)
            assert current.dtype == dtype
            currents.append(np.asarray(current, np.float64))
        # Closed form for a drive held from rest: I(t) = D (1 - exp(-t / tau)); tau = 0 for
        # the instantaneous synapse.
        t = dt * np.arange(1, 41)[:, None]
        tau = syn.tau if isinstance(syn, Exponential) else 0.0
        decay = np.exp(-t / tau) if tau else np.zeros_like(t)
        expected = np.asarray(drive, np.float64) * (1 - decay)
        tol = 1e-12 if dtype == jnp.float64 else 1e-6
        np.testing.assert_allclose(np.stack(currents), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("sur", all_surrogates(), ids=_name)
def test_surrogate_is_exact_forward_and_its_derivative_backward(sur):
    x = jnp.linspace(-3.0, 3.0, 61)
    exact = (x >= 0).astype(x.dtype)
    assert np.array_equal(np.asarray(spike_with_surrogate(x, exact, sur)), np.asarray(exact))
    grad = jax.vmap(jax.grad(lambda v: spike_with_surrogate(v, (v >= 0).astype(v.dtype), sur)))(x)
    d = np.asarray(sur.derivative(x))
    np.testing.assert_allclose(np.asarray(grad), d, rtol=1e-6)
    # A pseudo-derivative of a step at 0: positive, even, largest at 0.
    assert np.all(d > 0) and np.allclose(d, d[::-1], rtol=1e-5)
    assert np.argmax(d) == 30


def _target(kind, n, key):
    if kind == "label":
        return jnp.asarray(2)
    if kind == "vector":
        return jax.random.normal(key, (n,), jnp.float64)
    return jnp.asarray(0)


@pytest.mark.parametrize(
    "loss, kind", all_losses(), ids=lambda x: _name(x) if not isinstance(x, str) else x
)
def test_loss_is_a_scalar_whose_gradient_matches_finite_differences(loss, kind):
    with jax.enable_x64(True):
        k1, k2 = jax.random.split(jax.random.key(0))
        readout = jax.random.normal(k1, (5,), jnp.float64)
        target = _target(kind, 5, k2)
        value = loss(readout, target)
        assert jnp.shape(value) == () and np.isfinite(float(value))
        g = np.asarray(jax.grad(loss)(readout, target))
        h, fd = 1e-6, np.zeros(5)
        for i in range(5):
            e = jnp.zeros(5, jnp.float64).at[i].set(h)
            fd[i] = (float(loss(readout + e, target)) - float(loss(readout - e, target))) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)
        # float32 in, float32 out (no silent promotion under strict dtype rules)
        t32 = target.astype(jnp.float32) if kind == "vector" else target
        value32 = loss(readout.astype(jnp.float32), t32)
        assert value32.dtype == jnp.float32
        assert float(value32) == pytest.approx(float(value), rel=1e-5)


@pytest.mark.parametrize("loss", all_spike_losses(0.5), ids=_name)
def test_spike_loss_is_zero_on_identical_trains_and_symmetric(loss):
    k1, k2 = jax.random.split(jax.random.key(1))
    a = (jax.random.uniform(k1, (200, 3)) < 0.05).astype(jnp.float32)
    b = (jax.random.uniform(k2, (200, 3)) < 0.05).astype(jnp.float32)
    assert float(loss(a, a)) == pytest.approx(0.0, abs=1e-4)
    assert float(loss(a, b)) > 0.05
    assert float(loss(a, b)) == pytest.approx(float(loss(b, a)), rel=1e-5)


@pytest.mark.parametrize(
    "read, shape",
    [(MeanOutput(), (2,)), (MeanVoltage(), (2,)), (SpikeTrains(), (30, 2))],
    ids=lambda x: type(x).__name__ if not isinstance(x, tuple) else str(x),
)
def test_readout_needs_only_what_its_record_keeps(read, shape):
    net = wg.Network.feedforward((3, 4, 2), wg.LIF(), key=jax.random.key(0), scale=3.0, bias=2.0)
    trace = wg.simulate(net, jnp.ones(3), dt=0.5, steps=30, record=read.record)
    out = read(trace)
    assert out.shape == shape and out.dtype == jnp.float32
    # What the record leaves out is not kept (memory): only what the readout needs.
    kept = {f for f in ("counts", "mean_output", "spikes", "outputs", "voltages", "mean_voltage")
            if getattr(trace, f) is not None}  # fmt: skip
    assert kept == {f for f in kept if getattr(read.record, f)}


def _quadratic(p, key):
    x = jnp.concatenate([p["a"], p["b"]])
    return 0.5 * jnp.sum((x - 0.3) ** 2)


def _network_objective():
    net = wg.Network.feedforward((5, 4, 3), wg.LIF(), key=jax.random.key(0), scale=3.0, bias=2.0)
    x = jnp.abs(jax.random.normal(jax.random.key(1), (3, 5)))
    return NetworkObjective(net, x, jnp.array([0, 1, 2]), OneHotMSE(high=0.1), dt=0.5, steps=20)


CASES = [(e, "quadratic") for e in all_estimators()] + [
    (e, "network") for e in network_estimators()
]


@pytest.mark.parametrize(
    "est, case", CASES, ids=[f"{type(e).__name__}-{i}" for i, (e, _) in enumerate(CASES)]
)
def test_estimator_compiles_once_and_keeps_its_state_structure_under_cond(est, case):
    if case == "quadratic":
        obj, p = Objective(_quadratic), {"a": jnp.ones(3), "b": jnp.full(2, 2.0)}
    else:
        obj = _network_objective()
        p = obj.params()
    traces = []

    @eqx.filter_jit
    def step(est, obj, p, state, key, pred):
        traces.append(1)  # runs once per compilation
        g, new, info = est.estimate(obj, p, state, key=key)
        # optax's contract: the state keeps its structure, so it can pass through lax.cond.
        state = jax.lax.cond(pred, lambda: new, lambda: state)
        return g, state, info.loss

    state = est.init(p)
    for i in range(3):
        g, state, loss = step(est, obj, p, state, jax.random.key(i), jnp.asarray(i % 2 == 0))
    assert len(traces) == 1, "estimate recompiled for a new key or state"
    assert jax.tree.structure(state) == jax.tree.structure(est.init(p))
    assert jax.tree.structure(g) == jax.tree.structure(p)
    assert np.isfinite(float(loss))
