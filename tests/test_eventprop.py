"""EventProp (exact gradients of event-simulated LIF networks) against central finite
differences in float64, the event simulation against closed forms, lost spikes, and the
same objective under surrogate gradients and a sampling estimator."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.flatten_util import ravel_pytree

from weakgrad.estimators import Autodiff, EventProp, GaussianSmoothing, SurrogateGradient
from weakgrad.objectives.base import Objective
from weakgrad.objectives.events import (
    EventObjective,
    FirstSpikeCrossEntropy,
    FirstSpikeTimes,
    MaxVoltage,
)
from weakgrad.objectives.losses import SoftmaxCrossEntropy
from weakgrad.sim.event_lif import EventNetwork, adjoint, event_params
from weakgrad.sim.surrogates import SuperSpike

KEY = jax.random.key(0)


def _objective(sizes, recurrent, read, *, seed, gain, dtype, max_events=64, batch=3):
    spiking = isinstance(read, FirstSpikeTimes)
    net = EventNetwork(
        sizes=sizes, recurrent=recurrent, spiking_output=spiking, max_events=max_events
    )
    params = event_params(sizes, recurrent, key=jax.random.key(seed), dtype=dtype, gain=gain)
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.uniform(0.0, 10.0, (batch, sizes[0])), dtype)
    y = jnp.asarray(rng.integers(0, sizes[-1], batch), jnp.int32)
    loss = FirstSpikeCrossEntropy(tau0=2.0) if spiking else SoftmaxCrossEntropy(scale=2.0)
    return EventObjective(net, params, x, y, loss, read)


@eqx.filter_jit
def _eventprop(obj, params):
    return EventProp().estimate(obj, params, (), key=KEY)


@eqx.filter_jit
def _compare(obj, params, h):
    """EventProp's gradient and loss, central differences of every parameter (one vmapped
    population), the spike counts of the run and of every perturbed run, and the lost-spike
    flags: one compiled program per network."""
    grads, _, info = EventProp().estimate(obj, params, (), key=KEY)
    theta, unravel = ravel_pytree(params)
    d = theta.size
    thetas = jnp.concatenate([theta[None], theta + h * jnp.eye(d), theta - h * jnp.eye(d)])

    def one(th):
        trace = obj.traces(unravel(th))
        losses = jax.vmap(obj.loss)(obj.read(trace), obj.targets)
        return jnp.mean(losses), trace.counts, trace.overflow

    losses, counts, overflow = jax.vmap(one)(thetas)
    fd = (losses[1 : d + 1] - losses[d + 1 :]) / (2 * h)
    return grads, info.loss, losses[0], fd, counts[1:], counts[0], overflow


# Networks of 1, 2 and 3 layers; every hidden layer (the only layer of the 1-layer network)
# has recurrent weights, run as they are and set to zero (no recurrence: the same compiled
# program). Seeds and gains give a few spikes per neuron, outputs that fire where the loss
# is on first spike times, and no lost spikes.
CASES = [
    ((3, 4), (True,), FirstSpikeTimes(), 1, 12.0),
    ((3, 5, 3), (True, False), FirstSpikeTimes(), 4, 8.0),
    ((3, 4, 4, 2), (True, True, False), MaxVoltage(), 1, 8.0),
]


def _no_recurrence(params):
    return tuple({k: v * 0 if k == "recurrent" else v for k, v in p.items()} for p in params)


@pytest.mark.parametrize("recurrence", [True, False], ids=["recurrent", "feedforward"])
@pytest.mark.parametrize(
    "sizes,recurrent,read,seed,gain",
    CASES,
    ids=[f"{len(c[0]) - 1}layer-{type(c[2]).__name__}" for c in CASES],
)
def test_eventprop_matches_central_differences_in_float64(
    sizes, recurrent, read, seed, gain, recurrence
):
    with jax.enable_x64(True):
        obj = _objective(sizes, recurrent, read, seed=seed, gain=gain, dtype=jnp.float64)
        params = obj.params() if recurrence else _no_recurrence(obj.params())
        grads, est_loss, loss, fd, counts, base, overflow = _compare(obj, params, 1e-6)
        assert jax.tree.structure(grads) == jax.tree.structure(params)
        g = np.asarray(ravel_pytree(grads)[0])
        base = np.asarray(base)
        # The parameters are ones where no spike appears or disappears within the step: every
        # perturbed run fires the same spikes (else the test would compare across a jump).
        assert (np.asarray(counts) == base[None]).all()
        n_out = sizes[-1]
        assert (base[:, :-n_out].sum(1) > 0).all() or len(sizes) == 2  # hidden layers fire
        if isinstance(read, FirstSpikeTimes):
            assert (base[:, -n_out:].sum(1) > 0).all()  # first spike times to move
        assert not np.asarray(overflow).any()
        fd = np.asarray(fd)
        assert np.linalg.norm(fd) > 1e-3  # a gradient worth comparing
        rel = np.linalg.norm(g - fd) / np.linalg.norm(fd)
        assert rel <= 1e-6, rel
        assert float(est_loss) == pytest.approx(float(loss), rel=1e-12)


def test_spike_time_solves_the_threshold_equation_in_closed_form():
    """One neuron, one input spike of weight w at t0: V(t) = w A (e^{-u/ts} - e^{-u/tm}),
    u = t - t0; the simulated first spike satisfies V = threshold to float64 precision and is
    the earliest crossing on a fine grid."""
    with jax.enable_x64(True):
        net = EventNetwork(sizes=(1, 1), recurrent=(False,), max_events=4)
        w, t0 = 9.0, 1.5
        params = ({"weight": jnp.full((1, 1), w, jnp.float64)},)
        tr = net.simulate(params, jnp.asarray([t0], jnp.float64))
        t = float(tr.first_time[0])
        a = net.tau_syn / (net.tau_syn - net.tau_mem)

        def v(u):
            return w * a * (np.exp(-u / net.tau_syn) - np.exp(-u / net.tau_mem))

        assert v(t - t0) == pytest.approx(net.threshold, abs=1e-12)
        grid = np.linspace(0, t - t0, 10_001)[:-1]
        assert (v(grid) < net.threshold).all()
        assert int(tr.counts[0]) == 1  # after reset the decaying current cannot reach it again


@eqx.filter_jit
def _lost(obj, params):
    return obj.traces(params).overflow, obj.lost_spikes(params), obj(params, KEY)


def _small_problem():
    """The float32 network of the lost-spike and optax tests (one compiled EventProp)."""
    return _objective((3, 6, 3), (False, False), MaxVoltage(), seed=7, gain=15.0,
                      dtype=jnp.float32, batch=6)  # fmt: skip


def test_lost_spikes_give_nan_not_a_wrong_value():
    """More spikes than max_events (64): the trace says so (overflow), the objective's loss
    and EventProp's whole gradient are NaN, lost_spikes counts the examples; the same
    network at its own weights has room and finite gradients."""
    obj = _small_problem()
    params = obj.params()
    grads, _, info = _eventprop(obj, params)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(grads))
    loud = jax.tree.map(lambda x: 4 * jnp.abs(x), params)  # far more spikes than 64
    overflow, lost, loss = _lost(obj, loud)
    assert np.asarray(overflow).any() and int(lost) == int(np.asarray(overflow).sum())
    grads, _, info = _eventprop(obj, loud)
    assert all(np.isnan(np.asarray(x)).all() for x in jax.tree.leaves(grads))
    assert np.isnan(float(info.loss)) and np.isnan(float(loss))


def test_eventprop_refuses_other_objectives_naming_the_fix():
    with pytest.raises(TypeError, match="EventProp needs an EventObjective"):
        EventProp().estimate(Objective(lambda p, k: jnp.sum(p["w"] ** 2)),
                             {"w": jnp.ones(2)}, (), key=KEY)  # fmt: skip
    obj = _objective((3, 4), (False,), FirstSpikeTimes(), seed=1, gain=15.0, dtype=jnp.float32)
    with pytest.raises(TypeError, match="without with_surrogate"):
        EventProp().estimate(obj.with_surrogate(SuperSpike()), obj.params(), (), key=KEY)


def test_objective_checks_its_fields():
    obj = _objective((3, 4), (False,), FirstSpikeTimes(), seed=1, gain=15.0, dtype=jnp.float32)
    with pytest.raises(ValueError, match=r"needs EventNetwork\(spiking_output=False\)"):
        EventObjective(obj.net, obj.weights, obj.inputs, obj.targets, obj.loss, MaxVoltage())
    with pytest.raises(ValueError, match=r"inputs must be \(B, 3\)"):
        obj.with_batch(obj.inputs[:, :2], obj.targets)
    with pytest.raises(ValueError, match=r"params\[0\] must have shapes"):
        EventObjective(obj.net, ({"weight": jnp.ones((2, 4))},), obj.inputs, obj.targets,
                       obj.loss, obj.read)  # fmt: skip
    with pytest.raises(ValueError, match="tau_mem = 5.0 equals tau_syn"):
        EventNetwork(sizes=(1, 1), recurrent=(False,), tau_mem=5.0, tau_syn=5.0)


def test_eventprop_trains_under_jit_with_optax():
    """Gradients in float32 with the params' structure and dtype go into optax; a few
    steps lower the loss of a tiny max-voltage problem."""
    obj = _small_problem()
    opt = optax.sgd(1.0)
    params = obj.params()

    @eqx.filter_jit
    def step(params, state):
        g, _, info = EventProp().estimate(obj, params, (), key=KEY)
        updates, state = opt.update(g, state, params)
        return optax.apply_updates(params, updates), state, info.loss

    state = opt.init(params)
    losses = []
    for _ in range(15):
        params, state, loss = step(params, state)
        losses.append(float(loss))
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(params))
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert losses[-1] < 0.9 * losses[0], losses


def test_same_objective_serves_surrogate_gradients_and_sampling_estimators():
    """SurrogateGradient differentiates the grid twin (whose loss approaches the exact one as
    dt shrinks and whose gradient points like EventProp's); smoothing samples the exact
    loss; plain Autodiff would need reverse mode through the event loop, which JAX refuses."""
    obj = _small_problem()
    params = obj.params()
    g_ep, _, info = _eventprop(obj, params)
    exact = float(info.loss)
    coarse = EventObjective(obj.net, obj.weights, obj.inputs, obj.targets, obj.loss, obj.read,
                            dt=0.2)  # fmt: skip
    g_sg, _, info_sg = eqx.filter_jit(
        lambda o, p: SurrogateGradient(SuperSpike()).estimate(o, p, (), key=KEY)
    )(coarse, params)
    fine = EventObjective(obj.net, obj.weights, obj.inputs, obj.targets, obj.loss, obj.read,
                          dt=0.02).with_surrogate(SuperSpike())  # fmt: skip
    err = [abs(float(info_sg.loss) - exact),
           abs(float(eqx.filter_jit(lambda o, p: o(p, KEY))(fine, params)) - exact)]  # fmt: skip
    assert err[1] < err[0] and err[1] < 0.05 * abs(exact), err
    a, b = ravel_pytree(g_sg)[0], ravel_pytree(g_ep)[0]
    cos = float(a @ b / jnp.linalg.norm(a) / jnp.linalg.norm(b))
    assert cos > 0.5, cos
    g_sm, _, info_sm = eqx.filter_jit(
        lambda o, p: GaussianSmoothing(sigma=0.05, samples=8).estimate(o, p, (), key=KEY)
    )(obj, params)
    assert float(info_sm.loss) == pytest.approx(exact, rel=0.05)
    assert np.isfinite(np.asarray(ravel_pytree(g_sm)[0])).all()
    with pytest.raises(ValueError, match="while_loop"):
        Autodiff().estimate(obj, params, (), key=KEY)


def test_max_voltage_at_a_kink_moves_with_the_spike_that_makes_it():
    """An inhibitory spike that arrives while the output potential rises makes the maximum
    a kink at that spike's time; the gradient then includes dV/dt times the derivative of
    that spike time (the adjoint's dl/dt_k term), and matches central differences."""
    with jax.enable_x64(True):
        net = EventNetwork(sizes=(1, 2, 1), recurrent=(False, False), spiking_output=False,
                           max_events=16)  # fmt: skip
        params = ({"weight": jnp.asarray([[20.0, 8.0]])}, {"weight": jnp.asarray([[6.0], [-40.0]])})
        x = jnp.asarray([0.5])
        theta, unravel = ravel_pytree(params)

        @jax.jit
        def run(theta):
            tr = net.simulate(unravel(theta), x)
            g = adjoint(net, unravel(theta), tr, jnp.zeros(1), jnp.ones(1))
            h = 1e-6 * jnp.eye(theta.size)
            vmax = jax.vmap(lambda th: net.simulate(unravel(th), x).vmax[0])
            fd = (vmax(theta + h) - vmax(theta - h)) / 2e-6
            return tr, ravel_pytree(g)[0], fd

        tr, g, fd = run(theta)
        # The maximum sits at the end of an interval, at a hidden spike, with dV/dt > 0.
        k = int(tr.vmax_slot[0])
        assert float(tr.vmax_vdot[0]) > 0.1 and int(tr.src[k]) >= net.n_in
        assert float(tr.vmax_offset[0]) == pytest.approx(float(tr.span[k]))
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-9)
        assert abs(float(fd[1])) > 0.1  # the inhibitory neuron's input weight moves its spike
