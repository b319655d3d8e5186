"""The activity (energy) penalty: value on a hand-computable network, gradient against finite
differences on a smooth rate network, weight 0 is the base loss exactly, composition with
the surrogate gradient, and the errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakgrad.estimators.autodiff import SurrogateGradient
from weakgrad.objectives.activity import (
    ActivityPenalty,
    ActivityReadout,
    activity_of,
    with_activity_penalty,
    without_activity_penalty,
)
from weakgrad.objectives.losses import MSE, OneHotMSE
from weakgrad.objectives.network import MeanOutput, NetworkObjective
from weakgrad.sim.network import Layer, Network
from weakgrad.sim.neurons.escape_noise_lif import EscapeNoiseLIF
from weakgrad.sim.neurons.lif import LIF
from weakgrad.sim.neurons.rate import Sigmoid
from weakgrad.sim.surrogates import SuperSpike

STEPS = 20
KEY = jax.random.key(0)


def _lif_objective(neuron=None) -> NetworkObjective:
    """Layer 1: two neurons driven far above threshold (r_m I = 10^4 mV: a spike every step
    even right after the reset), one driven below rest (never); layer 2: zero weights and
    bias (never). Mean spikes per neuron per inference: 2 STEPS / 5."""
    neuron = neuron or LIF()
    w1 = jnp.asarray([[1000.0, 1000.0, -1000.0]], jnp.float32)
    l1 = Layer(w1, jnp.zeros(3, jnp.float32), neuron)
    l2 = Layer(jnp.zeros((3, 2), jnp.float32), jnp.zeros(2, jnp.float32), neuron)
    x = jnp.ones((2, 1), jnp.float32)
    return NetworkObjective(
        Network((l1, l2)), x, jnp.zeros(2, jnp.int32), OneHotMSE(), dt=0.1, steps=STEPS
    )


@pytest.mark.parametrize("target", ["counts", "rate"])
def test_value_on_a_hand_computable_network(target):
    obj = _lif_objective()
    p = obj.params()
    # Outputs never fire: OneHotMSE of (0, 0) against label 0 is (1 + 0) / 2.
    assert float(obj(p, KEY)) == pytest.approx(0.5)
    counts = 2 * STEPS / 5
    a = counts if target == "counts" else counts / STEPS
    pen = with_activity_penalty(obj, 0.25, target)
    assert float(pen(p, KEY)) == pytest.approx(0.5 + 0.25 * a, rel=1e-6)
    np.testing.assert_allclose(np.asarray(activity_of(pen, p, KEY, target)), [a, a], rtol=1e-6)


def test_weight_zero_is_the_base_loss_exactly():
    obj = _lif_objective(EscapeNoiseLIF(beta=0.5))  # stochastic: same key, same spikes
    p = jax.tree.map(lambda w: 0.02 * w, obj.params())
    base = np.asarray(obj.per_example(p, KEY))
    pen = np.asarray(with_activity_penalty(obj, 0.0).per_example(p, KEY))
    assert np.array_equal(base, pen)
    assert float(np.ptp(np.asarray(activity_of(obj, p, KEY)))) >= 0  # runs unpenalised too


def _sigmoid_objective(steps: int) -> NetworkObjective:
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    f64 = jnp.float64
    l1 = Layer(jax.random.normal(k1, (3, 4), f64), 0.1 * jnp.ones(4, f64), Sigmoid())
    l2 = Layer(jax.random.normal(k2, (4, 2), f64), jnp.zeros(2, f64), Sigmoid())
    x = jax.random.normal(k3, (5, 3), f64)
    t = jnp.full((5, 2), 0.3, f64)
    return NetworkObjective(Network((l1, l2)), x, t, MSE(), steps=steps)


@pytest.mark.parametrize(("target", "steps"), [("counts", 1), ("rate", 3)])
def test_gradient_matches_finite_differences_on_a_rate_network(target, steps):
    with jax.enable_x64(True):
        obj = with_activity_penalty(_sigmoid_objective(steps), 0.7, target)
        p = obj.params()
        flat, unravel = jax.flatten_util.ravel_pytree(p)
        f = jax.jit(lambda v: obj(unravel(v), KEY))
        g = jax.grad(f)(flat)
        h = 1e-6
        eye = np.eye(flat.size)
        fd = np.array([(f(flat + h * e) - f(flat - h * e)) / (2 * h) for e in eye])
        np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-9)
        # The penalty moved the gradient: the activity term is not zero.
        g0 = jax.grad(lambda v: without_activity_penalty(obj)(unravel(v), KEY))(flat)
        assert float(jnp.max(jnp.abs(g - g0))) > 1e-3


def test_surrogate_gradient_is_linear_in_the_weight():
    obj = _lif_objective()
    p = jax.tree.map(lambda w: 0.3 * w, obj.params())  # some neurons near threshold
    est = SurrogateGradient(SuperSpike(beta=1.0))

    def grad(weight):
        g, _, _ = est.estimate(with_activity_penalty(obj, weight), p, None, key=KEY)
        return jax.flatten_util.ravel_pytree(g)[0]

    g0, g1, g3 = grad(0.0), grad(1.0), grad(3.0)
    assert float(jnp.max(jnp.abs(g1 - g0))) > 1e-4  # the surrogate carries the penalty
    np.testing.assert_allclose(np.asarray(g3), np.asarray(g0 + 3 * (g1 - g0)), atol=1e-5)


def test_round_trip_and_errors():
    obj = _lif_objective()
    pen = with_activity_penalty(obj, 0.1, "rate")
    assert isinstance(pen.read, ActivityReadout) and isinstance(pen.loss, ActivityPenalty)
    back = without_activity_penalty(pen)
    assert isinstance(back.read, MeanOutput) and isinstance(back.loss, OneHotMSE)
    with pytest.raises(ValueError, match="weight"):
        ActivityPenalty(OneHotMSE(), -1.0)
    with pytest.raises(ValueError, match="target"):
        ActivityPenalty(OneHotMSE(), 1.0, "energy")
    with pytest.raises(TypeError, match="loss"):
        ActivityPenalty("mse", 1.0)
    with pytest.raises(TypeError, match="once"):
        with_activity_penalty(pen, 0.1)
    with pytest.raises(TypeError, match="ActivityReadout"):
        ActivityPenalty(OneHotMSE(), 1.0)(jnp.zeros(2), jnp.asarray(0))
    with pytest.raises(TypeError, match="network objective"):
        with_activity_penalty(lambda p, k: 0.0, 1.0)


def test_event_objective_is_refused():
    from weakgrad.tasks.yinyang import yinyang_objective, yinyang_points

    x, y = yinyang_points(2, np.random.default_rng(0))
    obj = yinyang_objective(x, y, hidden=3, key=KEY)
    with pytest.raises(TypeError, match="EventObjective"):
        with_activity_penalty(obj, 0.1)
