"""Jacobian spectra, degeneracy measures and initialisations (seed 004, issue 18): closed
forms (weight products, orthogonal and rank-k matrices), the perturbation Jacobian against
autodiff, and a contract over all initialisations."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakgrad.analysis.jacobian import (
    Perturbation,
    degeneracy,
    effective_rank,
    fraction_below,
    jacobian,
    jacobian_by_perturbation,
    network_spectra,
    spectra,
    spread,
)
from weakgrad.objectives.losses import MSE
from weakgrad.objectives.network import NetworkObjective
from weakgrad.sim.init import Fold, Gaussian, Orthogonal, all_inits, fold
from weakgrad.sim.network import Network
from weakgrad.sim.neurons.rate import Linear

KEY = jax.random.key(0)


@pytest.mark.parametrize("init", all_inits(), ids=repr)
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (5, 5)])
def test_init_contract(init, dtype, shape):
    with jax.enable_x64(dtype == jnp.float64):
        w = init(KEY, *shape, dtype)
        assert w.shape == shape and w.dtype == dtype
        assert np.array_equal(w, init(KEY, *shape, dtype))  # same key, same matrix
        assert not np.array_equal(w, init(jax.random.key(1), *shape, dtype))
        assert np.all(np.isfinite(w))


@pytest.mark.parametrize("gain", [1.0, 0.8])
@pytest.mark.parametrize("shape", [(7, 3), (3, 7), (6, 6)])
def test_orthogonal_gram_is_gain_squared(gain, shape):
    w = np.asarray(Orthogonal(gain)(KEY, *shape), np.float64)
    gram = w.T @ w if shape[0] >= shape[1] else w @ w.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(shape)), atol=1e-5)


def test_fold_halves_the_rank():
    w = Gaussian()(KEY, 64, 64)
    rank = [np.linalg.matrix_rank(np.asarray(fold(w, k))) for k in range(3)]
    assert rank == [64, 32, 16]  # fold 1 doubles the rank deficiency, as seed 004 says
    np.testing.assert_array_equal(fold(w, 1)[32:], w[:32])  # the first half, copied
    np.testing.assert_array_equal(Fold(Gaussian(), 1)(KEY, 64, 64), fold(w, 1))
    assert np.array_equal(fold(w, 0), w)
    with pytest.raises(ValueError, match=">= 0"):
        Fold(Gaussian(), -1)


def test_feedforward_init_keeps_default_numbers():
    a = Network.feedforward([5, 7, 3], Linear(), key=KEY, scale=0.7)
    b = Network.feedforward([5, 7, 3], Linear(), key=KEY, init=Gaussian(0.7))
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert np.array_equal(la.weight, lb.weight)
    o = Network.feedforward([5, 5], Linear(), key=KEY, init=Orthogonal(0.5))
    np.testing.assert_allclose(
        o.layers[0].weight.T @ o.layers[0].weight, 0.25 * np.eye(5), atol=1e-6
    )
    with pytest.raises(ValueError, match="scale"):
        Network.feedforward([5, 5], Linear(), key=KEY, scale=2.0, init=Orthogonal())


def test_linear_network_spectrum_is_the_weight_product():
    net = Network.feedforward([6, 8, 5, 4], Linear(), key=KEY)
    xs = jax.random.normal(jax.random.key(1), (3, 6))
    obj = NetworkObjective(net, xs, jnp.zeros((3, 4)), MSE())
    res = network_spectra(obj, key=KEY)
    ws = [np.asarray(la.weight, np.float64) for la in net.layers]
    product = ws[0] @ ws[1] @ ws[2]
    for b in range(3):
        np.testing.assert_allclose(
            res.values["input-output"][b], np.linalg.svd(product, compute_uv=False), rtol=1e-4
        )
    for i, w in enumerate(ws):
        np.testing.assert_allclose(
            res.values[f"layer {i + 1}"][0], np.linalg.svd(w, compute_uv=False), rtol=1e-4
        )


def test_orthogonal_and_rank_k_closed_forms():
    n, k = 8, 3
    q = np.asarray(Orthogonal()(KEY, n, n))
    s = spectra(lambda x: x @ q, jnp.ones((2, n))).values["input-output"]
    np.testing.assert_allclose(s, 1.0, atol=1e-5)
    np.testing.assert_allclose(effective_rank(s), n, rtol=1e-5)
    np.testing.assert_allclose(spread(s), 0.0, atol=1e-5)
    np.testing.assert_allclose(fraction_below(s, 1e-3), 0.0)
    a = np.asarray(jax.random.normal(KEY, (n, k)) @ jax.random.normal(jax.random.key(2), (k, n)))
    s = spectra(lambda x: x @ a, jnp.ones((2, n))).values["input-output"]
    np.testing.assert_allclose(fraction_below(s, 1e-3), (n - k) / n)
    m = degeneracy(s)
    assert m["fraction_below"] == pytest.approx((n - k) / n) and m["fraction_below_sem"] == 0
    assert 1 < m["effective_rank"] < k + 1e-6
    # rank one: effective rank 1; the spread ignores the numerically zero values
    assert effective_rank(np.array([[2.0, 0.0, 0.0]]))[0] == pytest.approx(1.0)
    assert spread(np.array([[10.0, 1.0, 0.0]]))[0] == pytest.approx(1.0)
    # a zero Jacobian (autodiff through spikes): fully degenerate, spread undefined
    zero = np.zeros((1, 4))
    assert fraction_below(zero)[0] == 1 and effective_rank(zero)[0] == 0
    assert np.isnan(spread(zero)[0])


def test_layers_compose_and_save(tmp_path):
    w1 = np.asarray(Gaussian()(KEY, 5, 6))
    w2 = np.asarray(Gaussian()(jax.random.key(3), 6, 4))
    layers = [lambda h: jnp.tanh(h @ w1), lambda h: jnp.tanh(h @ w2)]
    xs = jax.random.normal(jax.random.key(4), (4, 5))
    res = spectra(None, xs, layers=layers)
    assert set(res.values) == {"input-output", "layer 1", "layer 2"}
    assert res.values["layer 2"].shape == (4, 4)
    path = res.save(tmp_path)
    assert path.name == "jacobian.json"
    for name in ("jacobian_spectra.csv", "jacobian_measures.csv", "jacobian.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "effective rank" in res.summary()


def test_perturbation_jacobian_matches_autodiff():
    w1 = Gaussian()(KEY, 6, 10)
    w2 = Gaussian()(jax.random.key(5), 10, 3)

    def f(x):
        return jnp.tanh(jnp.tanh(x @ w1) @ w2)

    x = jax.random.normal(jax.random.key(6), (6,))
    exact = jacobian(f, x)
    assert exact.shape == (3, 6)
    est = jax.jit(lambda k: jacobian_by_perturbation(f, x, 1e-2, 200, k))(jax.random.key(7))
    assert np.linalg.norm(est - exact) / np.linalg.norm(exact) < 1e-2
    # a linear map is recovered exactly once samples >= n_in
    lin = jacobian_by_perturbation(lambda v: v @ w1, x, 0.5, 12, KEY)
    np.testing.assert_allclose(lin, np.asarray(w1).T, rtol=1e-3, atol=1e-4)
    xs = jax.random.normal(jax.random.key(8), (2, 6))
    s_auto = spectra(f, xs).values["input-output"]
    s_pert = spectra(f, xs, method=Perturbation(1e-2, 200)).values["input-output"]
    np.testing.assert_allclose(s_pert, s_auto, rtol=2e-2)


def test_matrix_products_tiny(tmp_path):
    from weakgrad.analysis.degeneracy import ProductSettings, matrix_products

    res = matrix_products(ProductSettings(n=8, depths=(1, 4), samples=2))
    assert res.values[("gaussian", 4)].shape == (2, 8)
    np.testing.assert_allclose(res.values[("orthogonal", 4)], 1.0, atol=1e-5)
    m = res.measures()
    assert m["orthogonal 4"]["spread"] == pytest.approx(0.0, abs=1e-5)
    # the Gaussian product spreads with depth
    assert m["gaussian 4"]["spread"] > m["gaussian 1"]["spread"]
    res.save(tmp_path)
    for name in ("products_spectra.csv", "products.json", "products.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "effective rank" in res.summary()


def test_deep_linear_tiny(tmp_path):
    from weakgrad.analysis.degeneracy import DeepLinearSettings, deep_linear

    s = DeepLinearSettings(layers=4, width=6, runs=2, steps=6, early=2, batch=4, eval_batch=5)
    res = deep_linear(s)
    assert set(res.loss) == set(s.inits)
    assert res.loss["fold 0"].shape == (2, 7) and res.grad_init["fold 0"].shape == (2, 4)
    assert all(np.all(np.isfinite(v)) for v in res.loss.values())
    # closed forms of a linear network: the gradient with respect to layer l's output is
    # the error times W_{l+1..L}^T, so orthogonal weights keep its norm across layers and
    # orthogonal x 0.8 shrinks it by 0.8 per layer towards the input
    g = res.grad_init["orthogonal"]
    np.testing.assert_allclose(g, g[:, -1:] * np.ones(4), rtol=1e-4)
    g = res.grad_init["orthogonal x 0.8"]
    np.testing.assert_allclose(g[:, :-1] / g[:, 1:], 0.8, rtol=1e-4)
    # the initial product of orthogonal matrices is orthogonal; fold 1 halves its rank
    np.testing.assert_allclose(res.spectra["orthogonal"], 1.0, atol=1e-5)
    assert np.all(res.spectra["fold 1"][:, 3:] < 1e-5)
    res.save(tmp_path)
    for name in (
        "deep_linear_loss.csv",
        "deep_linear_grads.csv",
        "deep_linear.json",
        "deep_linear_learning_curves.png",
        "deep_linear_gradient_norms.png",
    ):
        assert (tmp_path / name).stat().st_size > 0
    assert "final loss" in res.summary()
    adam = deep_linear(dataclasses.replace(s, optimizer="adam", inits=("orthogonal",)))
    assert np.all(np.isfinite(adam.loss["orthogonal"]))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"layers": 0}, "layers"),
        ({"early": 9, "steps": 5}, "early"),
        ({"inits": ("fold 2",)}, "inits"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_settings_refuse_bad_values(kw, match):
    from weakgrad.analysis.degeneracy import DeepLinearSettings, ProductSettings
    from weakgrad.errors import ConfigError

    with pytest.raises(ConfigError, match=match):
        DeepLinearSettings(**kw)
    with pytest.raises(ConfigError, match="depths"):
        ProductSettings(depths=(0,))


def test_drive_jacobian_is_the_input_jacobian():
    """wrt='drive' (the chain rule through the first layer's drive) gives the input
    Jacobian's spectra: autodiff on a sigmoid network, and the perturbation estimate of a
    linear one (exact once samples >= the drive's size) against its weight product."""
    from weakgrad.sim.neurons.rate import Sigmoid

    net = Network.feedforward([9, 4, 3], Sigmoid(), key=KEY, bias=0.1)
    xs = jax.random.normal(jax.random.key(1), (2, 9))
    obj = NetworkObjective(net, xs, jnp.zeros((2, 3)), MSE())
    a = network_spectra(obj, key=KEY)
    b = network_spectra(obj, key=KEY, wrt="drive")
    for name in a.values:
        np.testing.assert_allclose(b.values[name], a.values[name], rtol=1e-4, atol=1e-6)
    lin = NetworkObjective(Network.feedforward([9, 4, 3], Linear(), key=KEY), xs, xs[:, :3], MSE())
    c = network_spectra(lin, key=KEY, wrt="drive", method=Perturbation(0.3, 8), layers=False)
    ws = [np.asarray(la.weight, np.float64) for la in lin.net.layers]
    np.testing.assert_allclose(
        c.values["input-output"][1], np.linalg.svd(ws[0] @ ws[1], compute_uv=False), rtol=1e-3
    )
    assert set(c.values) == {"input-output"}
    with pytest.raises(ValueError, match="wrt"):
        network_spectra(obj, key=KEY, wrt="weights")
