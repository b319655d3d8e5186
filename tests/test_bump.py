"""The bump mollifier: unit mass, compact support, smoothness, and its sampler."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakgrad.analysis.bump import bump, bump_constant, bump_grad_log, sample_bump


def test_one_dimensional_constant():
    # integral_{-1}^{1} exp(1/(x^2-1)) dx = 0.443993816168079...
    assert bump_constant(1) == pytest.approx(1 / 0.443993816168079, rel=1e-10)


@pytest.mark.parametrize("width", [0.3, 1.0, 2.5])
def test_unit_mass_and_compact_support_1d_2d(width):
    with jax.enable_x64(True):
        x = np.linspace(-1.2 * width, 1.2 * width, 4001)
        y = np.asarray(bump(jnp.asarray(x)[:, None], width))
        assert np.trapezoid(y, x) == pytest.approx(1.0, abs=1e-8)
        assert np.all(y[np.abs(x) >= width] == 0) and np.all(y[np.abs(x) < 0.999 * width] > 0)
        g = np.linspace(-width, width, 801)
        xx, yy = np.meshgrid(g, g, indexing="ij")
        z = np.asarray(bump(jnp.stack([xx, yy], -1), width))
        assert np.trapezoid(np.trapezoid(z, g, axis=1), g) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10])
def test_unit_mass_by_monte_carlo(n):
    # Uniform samples of the cube [-1, 1]^n: mean of bump times volume 2^n.
    rng = np.random.default_rng(n)
    u = rng.uniform(-1, 1, size=(400_000, n))
    with jax.enable_x64(True):
        mass = float(np.mean(np.asarray(bump(jnp.asarray(u)))) * 2.0**n)
    assert mass == pytest.approx(1.0, rel=0.05 if n < 10 else 0.3)


def test_grad_log_matches_autodiff():
    x = jnp.array([[0.1, -0.3], [0.5, 0.2], [-0.7, 0.1]])
    auto = jax.vmap(jax.grad(lambda v: jnp.log(bump(v[None])[0])))(x)
    np.testing.assert_allclose(np.asarray(bump_grad_log(x)), np.asarray(auto), rtol=1e-5)


@pytest.mark.parametrize("n", [1, 3, 20])
def test_sampler_follows_the_bump_density(n):
    x = np.asarray(sample_bump(jax.random.key(0), (20_000,), n, jnp.float32))
    r = np.linalg.norm(x, axis=1)
    assert r.max() < 1.0
    np.testing.assert_allclose(x.mean(0), 0.0, atol=0.03)
    # Radial CDF against the density r^(n-1) exp(1/(r^2-1)) integrated numerically.
    grid = np.linspace(0, 1, 20001)[:-1]
    pdf = grid ** (n - 1) * np.exp(1 / (grid**2 - 1))
    cdf = np.cumsum(pdf) / np.sum(pdf)
    emp = np.searchsorted(np.sort(r), grid) / r.size
    assert np.max(np.abs(emp - cdf)) < 0.015  # KS distance; 5% critical value ~0.0096*1.4
