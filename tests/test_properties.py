"""Property-based checks (hypothesis) of numerical building blocks."""

import math

import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import weakgrad as wg
from weakgrad.sim.neurons.hodgkin_huxley import _x_over_1mexp


def _reference(x: float) -> float:
    return 1.0 + x / 2 if abs(x) < 1e-12 else x / -math.expm1(-x)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=-30.0, max_value=30.0, allow_nan=False))
def test_x_over_1mexp_matches_float64_reference(x):
    got = float(_x_over_1mexp(jnp.float32(x)))
    assert math.isclose(got, _reference(float(np.float32(x))), rel_tol=2e-6, abs_tol=1e-30)


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=6),
    st.integers(min_value=1, max_value=6),
)
def test_layer_rejects_any_mismatched_bias(n_in, n_out, n_bias):
    w = jnp.ones((n_in, n_out))
    if n_bias == n_out:
        assert wg.Layer(w, jnp.ones(n_bias), wg.Sigmoid()).n_out == n_out
    else:
        try:
            wg.Layer(w, jnp.ones(n_bias), wg.Sigmoid())
        except ValueError as e:
            assert f"({n_out},)" in str(e)
        else:
            raise AssertionError("mismatched bias accepted")
