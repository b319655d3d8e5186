"""API misuse gets an error naming the argument at the call, not deep inside JAX."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import weakgrad as wg
from weakgrad.estimators import GaussianSmoothing, NodePerturbation, Regression
from weakgrad.objectives.base import HostObjective


def test_network_constructors_name_the_argument_that_does_not_fit():
    hh = wg.HodgkinHuxley()
    with pytest.raises(ValueError, match=r"Network.independent: weight has shape \(4,\)"):
        wg.Network.independent(3, hh, weight=jnp.ones(4))
    with pytest.raises(ValueError, match=r"Network.independent: bias has shape \(2,\)"):
        wg.Network.independent(3, hh, bias=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"Network.complete_graph: recurrent has shape \(3,\)"):
        wg.Network.complete_graph(2, hh, recurrent=jnp.ones(3))


@pytest.mark.parametrize("key", [0, "seed", np.zeros(3, np.uint32)], ids=["int", "str", "shape"])
def test_simulate_rejects_a_key_that_is_not_a_prng_key(key):
    net = wg.Network.independent(2, wg.HodgkinHuxley(noise_std=1.0))
    with pytest.raises(TypeError, match=r"key must be a JAX PRNG key such as jax.random.key\(0\)"):
        wg.simulate(net, jnp.ones(1), dt=0.01, steps=3, key=key)
    # Both kinds of real keys work: typed and raw uint32 pairs.
    for good in (jax.random.key(0), jax.random.PRNGKey(0)):
        assert wg.simulate(net, jnp.ones(1), dt=0.01, steps=3, key=good).counts[0].shape == (2,)


def test_simulate_takes_python_lists_as_inputs():
    net = wg.Network.independent(2, wg.Sigmoid(), weight=jnp.asarray([1.0, -1.0]))
    listed = wg.simulate(net, [0.5], dt=1.0, steps=2)
    arrayed = wg.simulate(net, jnp.asarray([0.5]), dt=1.0, steps=2)
    np.testing.assert_array_equal(np.asarray(listed.mean_output[0]), arrayed.mean_output[0])
    with pytest.raises(TypeError, match=r"inputs must be an array"):
        wg.simulate(net, ["a"], dt=1.0, steps=2)


def test_a_traced_dt_above_the_models_limit_stops_at_run_time():
    net = wg.Network.independent(1, wg.HodgkinHuxley(), weight=10.0)
    run = jax.jit(lambda dt: wg.simulate(net, jnp.ones(1), dt=dt, steps=5).counts[0])
    assert int(run(0.01)[0]) == 0  # a valid traced dt runs
    with pytest.raises(Exception, match=r"at most 0.25 ms for these neurons"):
        jax.block_until_ready(run(1.0))
    with pytest.raises(Exception, match=r"dt must be a positive time step"):
        jax.block_until_ready(run(-0.01))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Regression(sigma=float("inf"), samples=4),
        lambda: Regression(sigma=float("nan"), samples=4),
        lambda: GaussianSmoothing(sigma=-1.0, samples=4),
        lambda: NodePerturbation(sigma=(1.0, float("inf")), samples=4),
    ],
    ids=["inf", "nan", "negative", "per-layer-inf"],
)
def test_perturbation_sizes_must_be_finite_and_positive(make):
    with pytest.raises(ValueError, match=r"must be a positive finite number"):
        make()


def test_host_objective_errors_reach_the_caller_unwrapped_outside_jit():
    def crash(thetas):
        raise RuntimeError("the external simulator crashed")

    params, est = {"a": jnp.ones(2)}, Regression(sigma=0.1, samples=4)
    with pytest.raises(RuntimeError, match=r"^the external simulator crashed$"):
        est.estimate(HostObjective(crash), params, (), key=jax.random.key(0))
    nan = HostObjective(lambda th: np.full(len(th), np.nan))
    with pytest.raises(ValueError, match=r"^HostObjective.fn returned a non-finite loss"):
        est.estimate(nan, params, (), key=jax.random.key(0))
    # Under jit the same message travels inside JAX's callback error.
    with pytest.raises(Exception, match=r"HostObjective.fn returned a non-finite loss"):
        jax.block_until_ready(eqx.filter_jit(est.estimate)(nan, params, (), key=jax.random.key(0)))
    # And a good host objective gives the same numbers eagerly and under jit.
    good = HostObjective(lambda th: np.sum((th - 0.3) ** 2, axis=1))
    eager = est.estimate(good, params, (), key=jax.random.key(1))[0]
    jitted = eqx.filter_jit(est.estimate)(good, params, (), key=jax.random.key(1))[0]
    np.testing.assert_allclose(np.asarray(eager["a"]), np.asarray(jitted["a"]), rtol=1e-5)


def test_inject_counts_negative_layers_from_the_end():
    net = wg.Network.chain(2, wg.Sigmoid(), weight=0.0, input_weight=0.0)
    last = wg.simulate(net, jnp.zeros(1), dt=1.0, steps=1, perturb=wg.Inject(-1, jnp.ones(1)))
    named = wg.simulate(net, jnp.zeros(1), dt=1.0, steps=1, perturb=wg.Inject(1, jnp.ones(1)))
    np.testing.assert_array_equal(np.asarray(last.mean_output[1]), named.mean_output[1])
    assert float(last.mean_output[1][0]) == pytest.approx(float(jax.nn.sigmoid(1.0)))
    assert float(last.mean_output[0][0]) == pytest.approx(0.5)  # layer 0 untouched
