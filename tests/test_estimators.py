"""Contract tests over every estimator, and each estimator against a closed form."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import weakgrad as wg
import weakgrad.objectives.losses
from weakgrad.analysis import bump
from weakgrad.estimators import (
    SPSA,
    Alternate,
    Autodiff,
    CentralDifference,
    GaussianSmoothing,
    LayerOnly,
    Masked,
    MollifiedMonteCarlo,
    MollifiedQuadrature,
    NodePerturbation,
    Regression,
    StepwiseNodePerturbation,
    SurrogateGradient,
    all_estimators,
    layer_groups,
    network_estimators,
    regression_slope,
)
from weakgrad.estimators.node_perturbation import noisy_readouts
from weakgrad.objectives import losses
from weakgrad.objectives.base import HostObjective, Objective
from weakgrad.objectives.losses import OneHotMSE
from weakgrad.objectives.network import NetworkObjective
from weakgrad.sim.surrogates import EscapeNoiseMatched, SigmoidSurrogate, SuperSpike

DIAG = np.array([1.0, 2.0, 3.0, 0.5, 1.5])
SHIFT = np.array([0.3, -0.2, 0.1, 0.4, -0.5])


def quadratic(p, key):
    x = jnp.concatenate([p["a"], p["b"]])
    return 0.5 * jnp.sum(jnp.asarray(DIAG, x.dtype) * (x - jnp.asarray(SHIFT, x.dtype)) ** 2)


def true_grad(p):
    x = np.concatenate([np.asarray(p["a"]), np.asarray(p["b"])])
    g = DIAG * (x - SHIFT)
    return {"a": g[:3], "b": g[3:]}


P0 = {"a": jnp.ones(3), "b": jnp.full(2, 2.0)}


# eqx.filter_jit without XLA's backend (LLVM) optimisations: most of these tests compile a
# simulation that then runs for milliseconds, and at the default level compiling one takes
# 3-5x longer (e.g. 2.2 s instead of 0.4 s for node perturbation on the sigmoid network).
# The results are the same up to float rounding.
_jit = functools.partial(eqx.filter_jit, compiler_options={"xla_backend_optimization_level": 0})


def _flat(tree):
    return np.concatenate([np.ravel(x) for x in jax.tree_util.tree_leaves(tree)])


@_jit
def _estimate(est, obj, params, state, key):
    return est.estimate(obj, params, state, key=key)


@_jit
def _grads_for_keys(est, obj, params, keys):
    """One estimate per key, in one compiled call."""
    return jax.vmap(lambda k: est.estimate(obj, params, est.init(params), key=k)[0])(keys)


def _keys(seeds):
    return jnp.stack([jax.random.key(k) for k in seeds])


def _take(tree, i):
    """Entry ``i`` of a pytree stacked along a leading axis (``_grads_for_keys``)."""
    return jax.tree.map(lambda x: x[i], tree)


@_jit
def _loss(obj, params, key):
    return obj(params, key)


@_jit
def _readout(obj, params, key):
    return obj.readout(params, key)


def _reference(obj):
    """Autodiff's gradient (key 0): the reference the estimates are compared with."""
    return _estimate(Autodiff(), obj, obj.params(), (), jax.random.key(0))[0]


def _rel_err(g, ref):
    g, ref = _flat(g), _flat(ref)
    return float(np.linalg.norm(g - ref) / np.linalg.norm(ref))


ESTIMATORS = all_estimators()
IDS = [f"{type(e).__name__}-{i}" for i, e in enumerate(ESTIMATORS)]


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_descends_on_a_quadratic_under_jit(est):
    obj = Objective(quadratic)
    opt = optax.adam(0.05)  # scale-free: rank-shaped estimates are directions
    params, state, opt_state = P0, est.init(P0), opt.init(P0)

    @_jit
    def step(params, state, opt_state, key):
        g, state, info = est.estimate(obj, params, state, key=key)
        with jax.numpy_dtype_promotion("standard"):  # optax mixes floats and int32 counts
            updates, opt_state = opt.update(g, opt_state)
        return optax.apply_updates(params, updates), state, opt_state, info

    start = float(quadratic(P0, None))
    for i in range(100):
        params, state, opt_state, info = step(params, state, opt_state, jax.random.key(i))
        assert int(info.evals) >= 1
    floor = 0.0
    if isinstance(est, Masked | LayerOnly):  # all_estimators' Masked, LayerOnly train "a" only
        floor = float(quadratic({"a": jnp.asarray(SHIFT[:3]), "b": P0["b"]}, None))
    assert float(quadratic(params, None)) - floor < 0.05 * (start - floor)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_deterministic_and_keeps_dtype(est):
    obj = Objective(quadratic)
    g1, _, i1 = _estimate(est, obj, P0, est.init(P0), jax.random.key(7))
    g2, _, _ = _estimate(est, obj, P0, est.init(P0), jax.random.key(7))
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.dtype == jnp.float32
    assert jax.tree.structure(g1) == jax.tree.structure(P0)
    if i1.stderr is not None:
        assert jax.tree.structure(i1.stderr) == jax.tree.structure(P0)


@pytest.mark.parametrize("est", ESTIMATORS, ids=IDS)
def test_float64_on_request(est):
    with jax.enable_x64(True):
        p64 = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64), P0)
        g, _, info = _estimate(est, Objective(quadratic), p64, est.init(p64), jax.random.key(1))
        assert all(x.dtype == jnp.float64 for x in jax.tree_util.tree_leaves(g))
        assert np.isfinite(float(info.loss))


def test_exact_estimators_match_the_true_gradient():
    obj = Objective(quadratic)
    for est in [CentralDifference(step=1e-2), Autodiff(), MollifiedQuadrature(width=0.3)]:
        if isinstance(est, MollifiedQuadrature):
            continue  # needs d <= 2; tested below
        g, _, _ = _estimate(est, obj, P0, (), jax.random.key(0))
        assert _rel_err(g, true_grad(P0)) < 1e-4, type(est).__name__


@pytest.mark.parametrize(
    "make",
    [
        lambda s: GaussianSmoothing(sigma=0.05, samples=s),
        lambda s: GaussianSmoothing(sigma=0.05, samples=s, antithetic=False),
        lambda s: SPSA(step=0.05, samples=s // 2),
        lambda s: MollifiedMonteCarlo(width=0.1, samples=s),
    ],
    ids=["smoothing-antithetic", "smoothing-baseline", "spsa", "mollified-mc"],
)
def test_monte_carlo_error_shrinks_like_one_over_sqrt_samples(make):
    # For a quadratic the Gaussian- (and bump-) smoothed gradient equals the true gradient,
    # so the error is pure Monte-Carlo noise: 16x the samples should cut it ~4x.
    obj = Objective(quadratic)
    ref = true_grad(P0)

    def mean_err(s):
        g = _grads_for_keys(make(s), obj, P0, _keys(range(12)))
        return float(np.mean([_rel_err(_take(g, k), ref) for k in range(12)]))

    small, large = mean_err(64), mean_err(1024)
    assert 2.5 < small / large < 6.5, (small, large)
    assert large < 0.35


def test_regression_is_exact_on_a_linear_function_with_enough_samples():
    g_true = jnp.asarray([0.5, -1.0, 2.0, 0.0, 3.0, -0.25])
    obj = Objective(lambda p, key: 4.0 + p @ g_true)
    theta = jnp.ones(6)
    # S = d + 1 (square) and S > d + 1 (tall); antithetic pairs need S >= 2d.
    for s, antithetic in [(7, False), (40, False), (12, True), (40, True)]:
        for refresh in [1, 3]:
            est = Regression(
                sigma=0.1, samples=s, refresh_every=refresh, ridge=0.0, antithetic=antithetic
            )
            state = est.init(theta)
            for k in range(2):  # the second estimate reuses the factor when refresh > 1
                g, state, _ = _estimate(est, obj, theta, state, jax.random.key(s + k))
                np.testing.assert_allclose(np.asarray(g), np.asarray(g_true), atol=2e-3)


def test_antithetic_regression_is_least_squares_on_the_paired_design():
    # Fitting y ~ a + z b on the 2n points (+z, -z) equals the fitted half-differences.
    with jax.enable_x64(True):
        theta = jnp.asarray([0.3, -0.2, 0.5])
        obj = Objective(lambda t, key: jnp.sum(jnp.sin(3 * t)) + t[0] * t[1])
        est = Regression(sigma=0.2, samples=20, antithetic=True, ridge=0.0)
        g, _, _ = _estimate(est, obj, theta, (), jax.random.key(0))
        k_base = jax.random.split(jax.random.key(0), 4)[0]
        z = np.asarray(wg.random.normal_array(k_base, (10, 3), jnp.float64))
        pts = np.concatenate([z, -z])
        y = np.asarray(jax.vmap(lambda q: obj(theta + 0.2 * q, None))(jnp.asarray(pts)))
        x = np.column_stack([np.ones(20), pts])
        ref = np.linalg.lstsq(x, y, rcond=None)[0][1:] / 0.2
        np.testing.assert_allclose(np.asarray(g), ref, rtol=1e-8)


@pytest.mark.parametrize("shape", [(30, 8), (9, 8), (5, 12)], ids=["tall", "square", "wide"])
def test_regression_slope_equals_lstsq(shape):
    rng = np.random.default_rng(0)
    z = rng.normal(size=shape)
    y = rng.normal(size=shape[0])
    with jax.enable_x64(True):
        b = np.asarray(regression_slope(jnp.asarray(z), jnp.asarray(y)))
    # Free intercept: least squares on centred data (minimum-norm slope when wide).
    ref = np.linalg.lstsq(z - z.mean(0), y - y.mean(), rcond=None)[0]
    if shape[0] > shape[1]:
        x = np.column_stack([np.ones(shape[0]), z])
        np.testing.assert_allclose(ref, np.linalg.lstsq(x, y, rcond=None)[0][1:], rtol=1e-10)
    np.testing.assert_allclose(b, ref, rtol=1e-8, atol=1e-10)


def test_regression_refresh_reuses_the_factor_but_redraws_directions():
    obj = Objective(quadratic)
    est = Regression(sigma=0.05, samples=16, refresh_every=5)
    state = est.init(P0)
    g1, state, _ = _estimate(est, obj, P0, state, jax.random.key(0))
    chol = np.asarray(state.chol)
    g2, state, _ = _estimate(est, obj, P0, state, jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(state.chol), chol)
    assert not np.allclose(_flat(g1), _flat(g2))
    assert int(state.count) == 2


def test_regression_stderr_covers_the_error():
    obj = Objective(lambda p, key: quadratic(p, key) + 0.0)
    est = Regression(sigma=0.05, samples=400)
    hits = 0
    g, _, info = _jit(jax.vmap(lambda k: est.estimate(obj, P0, (), key=k)))(_keys(range(20)))
    for k in range(20):
        err = np.abs(_flat(_take(g, k)) - _flat(true_grad(P0)))
        hits += np.sum(err < 3 * _flat(_take(info.stderr, k)) + 1e-6)
    assert hits >= 0.9 * 20 * 5


def test_mollified_quadrature_on_a_quadratic_is_the_true_gradient():
    # A symmetric kernel shifts a quadratic by a constant, so its gradient is unchanged.
    for d in [1, 2]:
        obj = Objective(lambda t, key, d=d: 0.5 * jnp.sum(DIAG[:d] * (t - SHIFT[:d]) ** 2))
        theta = jnp.full(d, 1.3)
        g, _, info = _estimate(
            MollifiedQuadrature(width=0.5, points=48), obj, theta, (), jax.random.key(0)
        )
        np.testing.assert_allclose(np.asarray(g), DIAG[:d] * (1.3 - SHIFT[:d]), rtol=1e-3)
        assert int(info.evals) == 48**d


def test_mollified_quadrature_smooths_a_step():
    # L = step at 0; mollified slope at theta is phi_eps(theta): the bump itself.
    obj = Objective(lambda t, key: (t[0] > 0).astype(t.dtype))
    for theta, width in [(0.0, 0.5), (0.2, 0.5), (0.6, 0.5)]:
        g, _, _ = _estimate(
            MollifiedQuadrature(width=width, points=400),
            obj,
            jnp.array([theta]),
            (),
            jax.random.key(0),
        )
        expected = float(bump.bump(jnp.array([[-theta]]), width)[0])
        assert abs(float(g[0]) - expected) < 0.03 * (1 + expected), (theta, float(g[0]), expected)


def test_mollified_quadrature_refuses_many_dimensions():
    with pytest.raises(ValueError, match="d <= 2"):
        MollifiedQuadrature().estimate(Objective(quadratic), P0, (), key=jax.random.key(0))


def test_masked_and_alternate():
    obj = Objective(quadratic)
    g, _, _ = _estimate(
        Masked(CentralDifference(), {"a": True, "b": False}), obj, P0, (), jax.random.key(0)
    )
    np.testing.assert_array_equal(np.asarray(g["b"]), 0.0)
    np.testing.assert_allclose(np.asarray(g["a"]), true_grad(P0)["a"], rtol=1e-3)
    # Element masks work too, and non-sampling estimators are masked after the fact.
    mask = {"a": np.array([True, False, True]), "b": False}
    g, _, _ = _estimate(Masked(Autodiff(), mask), obj, P0, (), jax.random.key(0))
    np.testing.assert_allclose(np.asarray(g["a"]), true_grad(P0)["a"] * [1, 0, 1], rtol=1e-6)

    est = Alternate(CentralDifference())
    state = est.init(P0)
    seen = []
    for k in range(3):
        g, state, _ = _estimate(est, obj, P0, state, jax.random.key(k))
        seen.append((bool(np.any(np.asarray(g["a"]))), bool(np.any(np.asarray(g["b"])))))
    assert seen == [(True, False), (False, True), (True, False)]


def test_layer_only_simulates_the_layers_below_once_with_the_same_estimate():
    from weakgrad.estimators.combinators import _simulates_lower_once

    obj = _hh_objective(100)  # deterministic HH neurons, 6-5-3
    p, key = obj.params(), jax.random.key(3)
    reg = Regression(sigma=0.05, samples=32, antithetic=True)
    masks = layer_groups(p)
    assert _simulates_lower_once(obj, 1) and not _simulates_lower_once(obj, 0)
    for layer, exact in [(0, True), (1, False)]:
        state = LayerOnly(reg, layer).init(p)
        g, _, info = _estimate(LayerOnly(reg, layer), obj, p, state, key)
        ref, _, ref_info = _estimate(Masked(reg, masks[layer]), obj, p, state, key)
        assert int(info.evals) == int(ref_info.evals)
        check = np.testing.assert_array_equal if exact else _close  # the tail: float rounding
        check(np.asarray(info.loss), np.asarray(ref_info.loss))
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref), strict=True):
            check(np.asarray(a), np.asarray(b))
        assert not any(np.any(np.asarray(x)) for x in jax.tree.leaves(g[1 - layer]))
    # Noise below the layer: every perturbed run draws its own, so the whole network runs.
    noisy_net = wg.Network.feedforward(
        (6, 5, 3), wg.HodgkinHuxley(noise_std=2.0), key=jax.random.key(0), scale=12.0, bias=6.0
    )
    noisy = eqx.tree_at(lambda o: o.net, obj, noisy_net)
    assert not _simulates_lower_once(noisy, 1)
    g, _, _ = _estimate(LayerOnly(reg, 1), noisy, p, (), key)
    ref, _, _ = _estimate(Masked(reg, masks[1]), noisy, p, (), key)
    for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # Alternate uses it for sampling estimators, per layer.
    assert all(isinstance(m, LayerOnly) for m in Alternate(reg)._masked(p))
    with pytest.raises(TypeError, match="LayerOnly.estimator must be a sampling estimator"):
        LayerOnly(Autodiff(), 0)
    with pytest.raises(ValueError, match="LayerOnly.layer = 2, but params have 2 layers"):
        LayerOnly(reg, 2).init(p)
    with pytest.raises(ValueError, match="LayerOnly needs params with at least two layers"):
        LayerOnly(reg, 0).init((p[0],))


def test_lower_layers_are_not_reused_under_an_activity_penalty():
    # The penalty counts every layer's spikes; a tail of the upper layers would leave the
    # lower ones out of the loss (the gradient's differences cancel them, the loss not).
    from weakgrad.objectives.activity import with_activity_penalty

    obj = with_activity_penalty(_hh_objective(100), 0.05)
    p, key = obj.params(), jax.random.key(2)
    for make in (
        lambda reuse: NodePerturbation(sigma=0.5, samples=4, layers=(1,), reuse_lower=reuse),
        lambda reuse: (
            LayerOnly(Regression(sigma=0.05, samples=4), 1)
            if reuse
            else Masked(Regression(sigma=0.05, samples=4), layer_groups(p)[1])
        ),
    ):
        g, _, info = _estimate(make(True), obj, p, (), key)
        ref, _, ref_info = _estimate(make(False), obj, p, (), key)
        np.testing.assert_array_equal(np.asarray(info.loss), np.asarray(ref_info.loss))
        for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(ref), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def _close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_alternate_mixes_groups_with_and_without_a_standard_error():
    # Regression with S = 4 fits group "b" (2 parameters + intercept) by least squares, with
    # a standard error, and group "a" (3 + 1) by minimum norm, without one: the issue-16 crash
    # (lax.switch on mismatched structures). "a" then reports NaN: unknown, not zero.
    obj = Objective(quadratic)
    est = Alternate(Regression(sigma=1e-3, samples=4, antithetic=False))
    state = est.init(P0)
    g, state, info = _estimate(est, obj, P0, state, jax.random.key(0))
    assert np.all(np.isnan(np.asarray(info.stderr["a"])))
    g, state, info = _estimate(est, obj, P0, state, jax.random.key(1))
    assert np.all(np.isfinite(np.asarray(info.stderr["b"])))
    assert np.all(np.asarray(g["a"]) == 0)
    np.testing.assert_allclose(np.asarray(g["b"]), true_grad(P0)["b"], rtol=1e-2)


def test_bad_input_gets_a_clear_error():
    with pytest.raises(ValueError, match=r"GaussianSmoothing.sigma must be a positive"):
        GaussianSmoothing(sigma=0.0)
    with pytest.raises(ValueError, match=r"Regression.sigma must be a positive"):
        Regression(sigma=-1.0)
    with pytest.raises(ValueError, match=r"SPSA.samples must be an int >= 1"):
        SPSA(samples=0)
    with pytest.raises(ValueError, match=r"GaussianSmoothing.samples must be even"):
        GaussianSmoothing(samples=7)
    with pytest.raises(ValueError, match=r"selects no parameter"):
        Masked(Regression(), {"a": False, "b": False}).init(P0)
    with pytest.raises(ValueError, match=r"Autodiff.clip must be None or a positive"):
        Autodiff(clip=0.0)
    with pytest.raises(TypeError, match=r"needs a NetworkObjective"):
        NodePerturbation().estimate(Objective(quadratic), P0, (), key=jax.random.key(0))
    with pytest.raises(TypeError, match=r"SurrogateGradient needs an objective built on"):
        SurrogateGradient(SuperSpike()).estimate(
            Objective(quadratic), P0, (), key=jax.random.key(0)
        )


def _host_quadratic(thetas):
    return 0.5 * np.sum(DIAG * (thetas - SHIFT) ** 2, axis=1)


def test_host_objective_gives_the_same_estimate_as_the_jax_one():
    est = GaussianSmoothing(sigma=0.05, samples=32)
    g_jax, _, _ = _estimate(est, Objective(quadratic), P0, (), jax.random.key(3))
    g_host, _, info = _estimate(est, HostObjective(_host_quadratic), P0, (), jax.random.key(3))
    np.testing.assert_allclose(_flat(g_host), _flat(g_jax), rtol=1e-4, atol=1e-5)
    assert int(info.evals) == 32


def test_host_objective_seeds_are_common_or_independent():
    seen = []

    def fn(thetas, seeds):
        seen.append(np.asarray(seeds))
        return _host_quadratic(thetas)

    obj = HostObjective(fn, takes_seed=True)
    for common in [True, False]:
        est = GaussianSmoothing(sigma=0.05, samples=8, common_noise=common)
        jax.block_until_ready(_estimate(est, obj, P0, (), jax.random.key(0)))
    assert len(set(seen[0].tolist())) == 1
    assert len(set(seen[1].tolist())) == 8


@pytest.mark.parametrize(
    "fn, message",
    [
        (lambda t: np.zeros(len(t) + 1), r"returned shape \(\d+,\) for \d+ parameter vectors"),
        (lambda t: np.full(len(t), np.nan), r"returned a non-finite loss"),
    ],
    ids=["wrong-shape", "nan"],
)
def test_host_objective_bad_output(fn, message):
    with pytest.raises(Exception, match=message):
        GaussianSmoothing(sigma=0.05, samples=8).estimate(
            HostObjective(fn), P0, (), key=jax.random.key(0)
        )


@functools.cache
def _sigmoid_objective():
    net = wg.Network.feedforward((12, 8, 4), wg.Sigmoid(), key=jax.random.key(0), scale=2.0)
    x = jax.random.normal(jax.random.key(1), (6, 12))
    return NetworkObjective(net, x, jnp.arange(6) % 4, OneHotMSE())


@functools.cache
def _sigmoid_reference():
    """Autodiff's gradient on the sigmoid network, computed once for all its tests."""
    return _reference(_sigmoid_objective())


def _cosine(a, b):
    a, b = _flat(a), _flat(b)
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_node_perturbation_matches_autodiff_on_a_smooth_network():
    obj = _sigmoid_objective()
    p = obj.params()
    ref = _sigmoid_reference()
    cos = {}
    for s in [16, 2048]:
        g, _, info = _estimate(
            NodePerturbation(sigma=1e-2, samples=s), obj, p, (), jax.random.key(1)
        )
        cos[s] = _cosine(g, ref)
        assert int(info.evals) == s + 1
    assert cos[2048] > 0.98 and cos[2048] > cos[16]
    # One layer only: the other layer's gradient is exactly zero.
    g, _, _ = _estimate(
        NodePerturbation(sigma=1e-2, samples=64, layers=(1,)), obj, p, (), jax.random.key(1)
    )
    assert not np.any(np.asarray(g[0]["weight"])) and np.any(np.asarray(g[1]["weight"]))


def test_node_perturbation_needs_far_fewer_samples_than_weight_perturbation():
    obj = _sigmoid_objective()
    p = obj.params()
    ref = _sigmoid_reference()
    node, _, _ = _estimate(NodePerturbation(sigma=1e-2, samples=128), obj, p, (), jax.random.key(1))
    weight, _, _ = _estimate(
        GaussianSmoothing(sigma=1e-2, samples=128), obj, p, (), jax.random.key(1)
    )
    assert _cosine(node, ref) > _cosine(weight, ref) + 0.2


def _hh_objective(steps, loss=None, **kw):
    """A 6-5-3 HH network on two constant inputs, both layers firing."""
    net = wg.Network.feedforward(
        (6, 5, 3), wg.HodgkinHuxley(), key=jax.random.key(0), scale=12.0, bias=6.0
    )
    x = jnp.abs(jax.random.normal(jax.random.key(1), (2, 6)))
    loss = OneHotMSE(high=0.3) if loss is None else loss
    return NetworkObjective(net, x, jnp.arange(2), loss, dt=0.05, steps=steps, **kw)


def test_node_perturbation_on_hodgkin_huxley_network():
    obj = _hh_objective(100)
    p = obj.params()
    ref = _reference(obj)
    g, _, info = _estimate(NodePerturbation(sigma=0.5, samples=1024), obj, p, (), jax.random.key(1))
    assert np.isfinite(float(info.loss))
    assert _cosine(g, ref) > 0.7


def test_surrogate_gradient_on_a_spiking_network():
    net = wg.Network.feedforward((5, 4), wg.LIF(), key=jax.random.key(0), scale=3.0, bias=2.0)
    x = jnp.abs(jax.random.normal(jax.random.key(1), (3, 5)))
    obj = NetworkObjective(net, x, jnp.array([0, 1, 2]), OneHotMSE(high=0.1), dt=0.5, steps=100)
    p = obj.params()
    exact = _reference(obj)
    assert not np.any(_flat(exact))  # spikes are steps: autodiff sees nothing
    loss = float(_loss(obj, p, jax.random.key(0)))
    for s in [SuperSpike(beta=1.0), SigmoidSurrogate(beta=0.5), EscapeNoiseMatched(beta=0.5)]:
        g, _, info = _estimate(SurrogateGradient(s), obj, p, (), jax.random.key(0))
        assert np.all(np.isfinite(_flat(g))) and np.any(_flat(g))
        assert float(info.loss) == pytest.approx(loss)


def test_escape_noise_matched_surrogate_is_the_escape_derivative():
    neuron = wg.EscapeNoiseLIF(beta=0.7, theta=-52.0)
    v = jnp.linspace(-60, -40, 11)
    p_prime = jax.vmap(jax.grad(lambda x: neuron.spike_probability(x)))(v)
    np.testing.assert_allclose(
        np.asarray(EscapeNoiseMatched(0.7).derivative(v - neuron.theta)),
        np.asarray(p_prime),
        rtol=1e-5,
    )


def test_gradient_clipping_bounds_the_norm():
    obj = Objective(lambda p, key: 1e6 * jnp.sum(p**2))
    g, _, _ = Autodiff(clip=1.0).estimate(obj, jnp.ones(4), (), key=jax.random.key(0))
    assert float(jnp.linalg.norm(g)) == pytest.approx(1.0, rel=1e-5)


def test_regression_with_few_samples_does_not_leak_the_mean_loss():
    # S << d: the minimum-norm slope is the projection of the gradient onto the sampled
    # directions, so its error is below 1 and its cosine near sqrt(S/d), whatever the
    # loss's constant part (here 100, far larger than the slope).
    d = 400
    g_true = jax.random.normal(jax.random.key(0), (d,))
    obj = Objective(lambda p, key: 100.0 + p @ g_true)
    errs, coss = [], []
    for k in range(5):
        g, _, _ = _estimate(
            Regression(sigma=0.01, samples=100), obj, jnp.zeros(d), (), jax.random.key(k)
        )
        rel, cos = _rel_err(g, g_true), _cosine(g, g_true)
        errs.append(rel)
        coss.append(cos)
    assert max(errs) < 1.0
    assert np.mean(coss) == pytest.approx(np.sqrt(100 / d), abs=0.1)


def test_stepwise_node_perturbation_is_exact_for_a_single_step_network():
    # One step: the immediate effect is the whole effect, so the probes see the gradient.
    obj = _sigmoid_objective()
    p = obj.params()
    ref = _sigmoid_reference()
    g4, _, _ = _estimate(
        StepwiseNodePerturbation(sigma=1e-2, samples=4), obj, p, (), jax.random.key(1)
    )
    g, _, info = _estimate(
        StepwiseNodePerturbation(sigma=1e-2, samples=1024), obj, p, (), jax.random.key(1)
    )
    assert _cosine(g, ref) > 0.99 and _cosine(g, ref) > _cosine(g4, ref)
    assert _rel_err(g, ref) < 0.15
    assert float(info.loss) == pytest.approx(float(_loss(obj, p, jax.random.key(1))), rel=1e-5)


@pytest.mark.parametrize("est", network_estimators(), ids=lambda e: type(e).__name__)
def test_network_estimators_contract(est):
    # Deterministic for a key, jittable, float32 in and out, one gradient per parameter;
    # on a spiking (LIF) network over several steps.
    net = wg.Network.feedforward((5, 4, 3), wg.LIF(), key=jax.random.key(0), scale=3.0, bias=2.0)
    x = jnp.abs(jax.random.normal(jax.random.key(1), (3, 5)))
    obj = NetworkObjective(net, x, jnp.array([0, 1, 2]), OneHotMSE(high=0.1), dt=0.5, steps=40)
    p = obj.params()
    g1, _, info = _estimate(est, obj, p, est.init(p), jax.random.key(3))
    g2, _, _ = _estimate(est, obj, p, est.init(p), jax.random.key(3))
    assert jax.tree.structure(g1) == jax.tree.structure(p)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2), strict=True):
        assert a.dtype == jnp.float32
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.all(np.isfinite(_flat(g1))) and int(info.evals) >= 1


def test_stepwise_probes_see_exactly_the_within_step_effect():
    # Linear units behind an exponential synapse: a drive change at step t moves that
    # step's output by a = 1 - exp(-dt/tau) and later outputs too. The stepwise variant
    # must report only the within-step part: a * x (dL/dreadout), whatever the later steps.
    tau, dt, steps = 4.0, 1.0, 20
    w = jnp.asarray([[0.5, -0.2], [0.1, 0.3], [-0.4, 0.2]])
    net = wg.Network((wg.Layer(w, jnp.zeros(2), wg.Linear(), wg.Exponential(tau)),))
    x = jnp.asarray([[1.0, 0.5, -0.5], [0.2, -1.0, 0.3]])
    targets = jnp.asarray([[1.0, 0.0], [0.0, 1.0]])
    obj = NetworkObjective(net, x, targets, losses.MSE(), dt=dt, steps=steps)
    p = obj.params()
    readout, _ = _readout(obj, p, jax.random.key(0))
    dl = jax.vmap(jax.grad(losses.MSE()))(readout, targets) / 2  # batch mean
    a = 1 - np.exp(-dt / tau)
    expected = a * np.asarray(x).T @ np.asarray(dl)
    g, _, _ = _estimate(
        StepwiseNodePerturbation(sigma=0.1, samples=4096), obj, p, (), jax.random.key(1)
    )
    np.testing.assert_allclose(
        np.asarray(g[0]["weight"]), expected, rtol=0.1, atol=0.03 * np.abs(expected).max()
    )
    np.testing.assert_allclose(
        np.asarray(g[0]["bias"]), a * np.asarray(dl).sum(0), rtol=0.1, atol=1e-3
    )
    # Autodiff sees the later steps too: a different (larger) gradient.
    ref = _reference(obj)
    assert np.linalg.norm(np.asarray(ref[0]["weight"])) > 1.5 * np.linalg.norm(expected)


def test_held_node_noise_is_unbiased_and_beats_white_noise_on_spiking_neurons():
    # A sigmoid network held at a constant input for 50 steps: every hold is exact to first
    # order, so with many samples all match autodiff.
    net = wg.Network.feedforward((12, 8, 4), wg.Sigmoid(), key=jax.random.key(0), scale=2.0)
    x = jax.random.normal(jax.random.key(1), (6, 12))
    obj = NetworkObjective(net, x, jnp.arange(6) % 4, OneHotMSE(), dt=1.0, steps=50)
    p = obj.params()
    ref = _reference(obj)
    for hold in [1, 10, None]:
        g, _, info = _estimate(
            NodePerturbation(sigma=1e-2, samples=2048, hold=hold), obj, p, (), jax.random.key(1)
        )
        assert _cosine(g, ref) > 0.98 and int(info.evals) == 2049
    with pytest.raises(ValueError, match=r"hold = 7 does not divide the objective's 50 steps"):
        NodePerturbation(hold=7).estimate(obj, p, (), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"NodePerturbation.hold must be a positive int"):
        NodePerturbation(hold=0)
    # Hodgkin-Huxley neurons over 10 ms: the loss's sensitivity is concentrated around
    # spikes, so white noise wastes most of its variance on steps that do not matter.
    obj = _hh_objective(200)
    p = obj.params()
    ref = _reference(obj)
    cos = {}
    for hold in [1, None]:
        g = _grads_for_keys(
            NodePerturbation(sigma=0.05, samples=256, hold=hold), obj, p, _keys(range(4))
        )
        cos[hold] = np.mean([_cosine(_take(g, k), ref) for k in range(4)])
    assert cos[None] > 0.9 and cos[None] > cos[1] + 0.1, cos


def test_antithetic_node_perturbation_is_unbiased_and_cancels_curvature():
    # Many pairs: matches autodiff like the plain estimator (each pair is 2 evaluations).
    obj = _sigmoid_objective()
    p = obj.params()
    ref = _sigmoid_reference()
    g, _, info = _estimate(
        NodePerturbation(sigma=1e-2, samples=2048, antithetic=True), obj, p, (), jax.random.key(1)
    )
    assert _cosine(g, ref) > 0.98 and int(info.evals) == 2049
    # Near a minimum the loss's curvature along each draw is the plain estimator's noise
    # (of order sigma); each pair's difference cancels it, leaving the small gradient.
    readout, _ = _readout(obj, p, jax.random.key(0))
    near = NetworkObjective(obj.net, obj.inputs, readout + 0.01, losses.MSE())
    ref = _reference(near)
    err = {}
    for anti in [False, True]:
        est = NodePerturbation(sigma=0.3, samples=16, antithetic=anti)
        g = _grads_for_keys(est, near, p, _keys(range(8)))
        err[anti] = np.mean([np.sum((_flat(_take(g, k)) - _flat(ref)) ** 2) for k in range(8)])
    assert err[True] < 0.35 * err[False], err
    with pytest.raises(ValueError, match=r"NodePerturbation.samples must be even"):
        NodePerturbation(samples=5, antithetic=True)


def test_node_perturbation_sigma_per_layer():
    obj = _sigmoid_objective()
    p = obj.params()
    key = jax.random.key(3)
    same = _estimate(NodePerturbation(sigma=(0.02, 0.02), samples=8), obj, p, (), key)[0]
    scalar = _estimate(NodePerturbation(sigma=0.02, samples=8), obj, p, (), key)[0]
    np.testing.assert_allclose(_flat(same), _flat(scalar), rtol=1e-6)
    # Each layer sees its own sigma: layer 1 alone with (a, b) equals layer 1 alone with b.
    mixed = NodePerturbation(sigma=(0.5, 0.02), samples=8, layers=(1,))
    alone = NodePerturbation(sigma=0.02, samples=8, layers=(1,))
    np.testing.assert_allclose(
        _flat(_estimate(mixed, obj, p, (), key)[0]),
        _flat(_estimate(alone, obj, p, (), key)[0]),
        rtol=1e-6,
    )
    ref = _sigmoid_reference()
    for layer in range(2):  # each layer's estimate is scaled by its own sigma
        est = NodePerturbation(sigma=(1e-2, 3e-2), samples=2048, layers=(layer,))
        g, _, _ = _estimate(est, obj, p, (), jax.random.key(1))
        a, r = _flat(g[layer]), _flat(ref[layer])
        assert _cosine(g[layer], ref[layer]) > 0.98
        assert abs(np.linalg.norm(a) / np.linalg.norm(r) - 1) < 0.1
    with pytest.raises(ValueError, match=r"has 3 values; the network has 2 layers"):
        NodePerturbation(sigma=(0.1, 0.1, 0.1)).estimate(obj, p, (), key=key)
    with pytest.raises(ValueError, match=r"NodePerturbation.sigma\[1\] must be a positive"):
        NodePerturbation(sigma=(0.1, -1.0))


def test_alternate_node_perturbation_injects_noise_into_one_layer():
    obj = _sigmoid_objective()
    p = obj.params()
    est = Alternate(NodePerturbation(sigma=1e-2, samples=16))
    state = est.init(p)
    alone = {}  # each layer alone, with the key the alternation gives it
    for layer in [0, 1]:
        one = NodePerturbation(sigma=1e-2, samples=16, layers=(layer,))
        alone[layer] = _estimate(one, obj, p, (), jax.random.key(layer))[0]
    for layer in [0, 1, 0]:
        g, state, _ = _estimate(est, obj, p, state, jax.random.key(layer))
        np.testing.assert_allclose(_flat(g), _flat(alone[layer]), rtol=2e-3, atol=1e-6)


def _noisy_hh_objective():
    """A 6-5-4-3 HH network with noisy neurons; the first example's drive blows it up."""
    net = wg.Network.feedforward(
        (6, 5, 4, 3), wg.HodgkinHuxley(noise_std=3.0), key=jax.random.key(0), scale=12.0, bias=6.0
    )
    x = jnp.abs(jax.random.normal(jax.random.key(1), (3, 6))).at[0].multiply(1e6)
    return NetworkObjective(net, x, jnp.arange(3), OneHotMSE(high=0.3), dt=0.05, steps=60)


@_jit
def _losses_and_readout(obj, params, key):
    return obj.per_example(params, key), obj.readout(params, key)


@_jit
def _tail_losses_and_readout(obj, params, key, first):
    """The same for ``obj.tail(params, key, first)`` on ``params[first:]``."""
    tail = obj.tail(params, key, first)
    return tail.per_example(params[first:], key), tail.readout(params[first:], key)


def test_tail_objective_reproduces_the_whole_network():
    obj = _noisy_hh_objective()
    p, key = obj.params(), jax.random.key(5)
    whole, (readout, valid) = _losses_and_readout(obj, p, key)
    whole = np.asarray(whole)
    assert np.isnan(whole[0]) and np.all(np.isfinite(whole[1:]))
    for first in (1, 2):
        tail_losses, (r, v) = _tail_losses_and_readout(obj, p, key, first)
        # Same losses (the neuron noise of the upper layers included), same NaN: up to
        # float32 rounding, as the tail is a separately compiled program (XLA may fuse and
        # order its arithmetic differently).
        np.testing.assert_allclose(np.asarray(tail_losses), whole, rtol=1e-6, atol=1e-9)
        np.testing.assert_array_equal(np.asarray(v), np.asarray(valid))
        np.testing.assert_allclose(np.asarray(r)[1:], np.asarray(readout)[1:], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match=r"tail\(first=3\) needs 0 < first < 3"):
        obj.tail(p, key, 3)


@pytest.mark.parametrize(
    "kw",
    [dict(layers=(2,)), dict(layers=(1, 2), hold=None), dict(layers=(1,), antithetic=True)],
    ids=["last", "upper-two-held", "middle-antithetic"],
)
def test_node_perturbation_reuses_the_unperturbed_lower_layers(kw):
    obj = _noisy_hh_objective()
    p, key = obj.params(), jax.random.key(7)
    est = NodePerturbation(sigma=0.5, samples=8, **kw)
    shared, _, info = _estimate(est, obj, p, (), key)
    alone, _, ref = _estimate(
        NodePerturbation(sigma=0.5, samples=8, reuse_lower=False, **kw), obj, p, (), key
    )
    assert int(info.evals) == int(ref.evals) == 9
    np.testing.assert_array_equal(float(info.loss), float(ref.loss))  # NaN from example 0
    for a, b in zip(jax.tree.leaves(shared), jax.tree.leaves(alone), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-9)
    assert not np.any(np.asarray(shared[0]["weight"]))


_noisy_readouts = _jit(noisy_readouts)  # sigma and draws are static


def test_noisy_readouts_spread_as_the_closed_form_on_a_linear_network():
    """Linear units, one step: readout = (x W0 + b0 + s0 xi0) W1 + b1 + s1 xi1, so its mean
    is the noise-free readout and its variance s0^2 sum_j W1[j, k]^2 + s1^2 per output."""
    net = wg.Network.feedforward((5, 4, 3), wg.Linear(), key=jax.random.key(0))
    obj = NetworkObjective(net, jax.random.normal(jax.random.key(1), (2, 5)), jnp.arange(2),
                           OneHotMSE())  # fmt: skip
    p, key, n = obj.params(), jax.random.key(2), 4000
    clean = np.asarray(_readout(obj, p, key)[0])
    r, valid = _noisy_readouts(obj, p, key, (0.5, 0.2), n)
    assert r.shape == (n, 2, 3) and bool(valid.all())
    var = 0.25 * np.sum(np.asarray(p[1]["weight"]) ** 2, 0) + 0.04
    r = np.asarray(r)
    np.testing.assert_allclose(r.mean(0), clean, atol=4 * np.sqrt(var.max() / n))
    np.testing.assert_allclose(r.var(0), np.broadcast_to(var, (2, 3)), rtol=0.1)
    assert np.corrcoef(r[:, 0, 0], r[:, 1, 0])[0, 1] < 0.1  # independent per example
    np.testing.assert_array_equal(np.asarray(_noisy_readouts(obj, p, key, (0.5, 0.2), n)[0]), r)
    quiet = np.asarray(_noisy_readouts(obj, p, key, (0.0, 0.0), 2)[0])
    np.testing.assert_allclose(quiet, np.broadcast_to(clean, quiet.shape), rtol=1e-6)
    with pytest.raises(ValueError, match=r"needs one value >= 0 per layer \(2\)"):
        noisy_readouts(obj, p, key, (0.5,), 2)
    with pytest.raises(ValueError, match=r"draws must be an int >= 1"):
        noisy_readouts(obj, p, key, (0.5, 0.2), 0)


def test_node_perturbation_samples_per_layer():
    obj = _sigmoid_objective()
    p = obj.params()
    per_layer = Alternate(NodePerturbation(sigma=1e-2, samples=(12, 4)))
    state = per_layer.init(p)
    alone = {}  # each layer alone, with the key the alternation gives it
    for layer, count in [(0, 12), (1, 4)]:
        one = NodePerturbation(sigma=1e-2, samples=count, layers=(layer,))
        alone[layer] = _estimate(one, obj, p, (), jax.random.key(10 + layer))
    for layer, count in [(0, 12), (1, 4), (0, 12)]:
        g, state, info = _estimate(per_layer, obj, p, state, jax.random.key(10 + layer))
        g_alone, _, ref = alone[layer]
        assert int(info.evals) == count + 1 == int(ref.evals)
        np.testing.assert_allclose(_flat(g), _flat(g_alone), rtol=2e-3, atol=1e-6)
    with pytest.raises(ValueError, match=r"needs one perturbed layer per estimate"):
        NodePerturbation(samples=(8, 4)).estimate(obj, p, (), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"has 3 counts; the network has 2 layers"):
        NodePerturbation(samples=(8, 4, 4), layers=(0,)).estimate(obj, p, (), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"or a tuple of them, one per layer, got \(8, 1\)"):
        NodePerturbation(samples=(8, 1))
    with pytest.raises(ValueError, match=r"must be even"):
        NodePerturbation(samples=(8, 3), antithetic=True)


def test_voltage_readout_with_node_perturbation_and_its_limits():
    from weakgrad.objectives.losses import SoftmaxCrossEntropy
    from weakgrad.objectives.network import MeanVoltage

    obj = _hh_objective(200, SoftmaxCrossEntropy(0.5), read=MeanVoltage())
    net, x = obj.net, obj.inputs
    p = obj.params()
    trace = _jit(wg.simulate)(
        net, x[0], dt=0.05, steps=200, record=wg.Record(voltages=True), key=jax.random.key(0)
    )
    readout, _ = _readout(obj, p, jax.random.key(0))
    np.testing.assert_allclose(readout[0], trace.voltages[-1].mean(0), rtol=1e-5)
    ref = _reference(obj)
    # sigma well below the distance to the nearest spike threshold (about 0.05 in b0[0]).
    g, _, _ = _estimate(
        NodePerturbation(sigma=2e-3, samples=512, hold=None), obj, p, (), jax.random.key(1)
    )
    assert _cosine(g, ref) > 0.9
    with pytest.raises(ValueError, match="needs the MeanOutput readout, got MeanVoltage"):
        StepwiseNodePerturbation().estimate(obj, p, (), key=jax.random.key(0))
