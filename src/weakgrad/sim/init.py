"""Weight initialisations for feed-forward layers: one interface, :class:`AbstractInit`.

An initialisation draws an ``(n_in, n_out)`` weight matrix (row = presynaptic, as
:class:`~weakgrad.sim.network.Layer` stores it) from an explicit PRNG key:

- :class:`Gaussian` -- ``N(0, scale^2 / n_in)``, the standard ``1/sqrt(n)`` initialisation
  (the draw of :meth:`~weakgrad.sim.network.Network.feedforward`, bit for bit);
- :class:`Orthogonal` -- ``gain`` times a Haar-random matrix with orthonormal rows or
  columns (Saxe, McClelland & Ganguli 2014, "Exact solutions to the nonlinear dynamics of
  learning in deep linear neural networks", ICLR): all singular values equal ``gain``;
- :class:`Fold` -- another initialisation folded ``k`` times (seed 004, "Why is it hard to
  train deep neural networks? Degeneracy, not vanishing gradients, is the key": "I just
  copied the first half of each initial weight matrix to the second half"), which makes it
  rank-deficient (degenerate) without changing the size of its entries.

:func:`all_inits` lists one of each for the contract tests.
"""

from __future__ import annotations

import abc
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

__all__ = ["AbstractInit", "Gaussian", "Orthogonal", "Fold", "fold", "all_inits"]


class AbstractInit(eqx.Module):
    """Draws one ``(n_in, n_out)`` weight matrix of ``dtype`` from ``key`` (same key, same
    matrix)."""

    @abc.abstractmethod
    def __call__(self, key: Array, n_in: int, n_out: int, dtype: Any = jnp.float32) -> Array:
        """The weights ``(n_in, n_out)``."""


def _check_size(name: str, n_in: int, n_out: int) -> None:
    if int(n_in) < 1 or int(n_out) < 1:
        raise ValueError(f"{name} needs n_in >= 1 and n_out >= 1, got ({n_in}, {n_out}).")


class Gaussian(AbstractInit):
    """Independent ``N(0, scale^2 / n_in)`` entries: unit-variance inputs give drives of
    variance ``scale^2``."""

    scale: float = 1.0

    def __call__(self, key: Array, n_in: int, n_out: int, dtype: Any = jnp.float32) -> Array:
        _check_size("Gaussian", n_in, n_out)
        # The same expression as Network.feedforward's default draw: the same numbers.
        return self.scale / np.sqrt(n_in) * jax.random.normal(key, (n_in, n_out), dtype)


class Orthogonal(AbstractInit):
    """``gain`` times a random matrix with orthonormal columns (``n_in >= n_out``:
    ``W^T W = gain^2 I``) or rows (``n_in < n_out``: ``W W^T = gain^2 I``).

    QR of a Gaussian matrix with the signs of ``R``'s diagonal moved into ``Q``, which makes
    ``Q`` Haar-distributed (Mezzadri 2007, "How to generate random matrices from the
    classical compact groups"); Saxe et al. (2014) for its use in deep networks.
    """

    gain: float = 1.0

    def __call__(self, key: Array, n_in: int, n_out: int, dtype: Any = jnp.float32) -> Array:
        _check_size("Orthogonal", n_in, n_out)
        big, small = max(n_in, n_out), min(n_in, n_out)
        a = jax.random.normal(key, (big, small), dtype)
        q, r = jnp.linalg.qr(a)
        # sign fix: without it Q is biased towards R's positive-diagonal convention
        q = q * jnp.where(jnp.diagonal(r) < 0, -1, 1).astype(dtype)
        w = q if n_in >= n_out else q.T
        return jnp.asarray(self.gain, dtype) * w


def fold(w: Array, k: int) -> Array:
    """``w`` with its first half of rows copied into its second half, ``k`` times over.

    Seed 004's "fold": fold 1 of a 64 x 64 matrix copies rows 0..31 onto rows 32..63. Fold
    ``k`` keeps the first ``ceil(n / 2^k)`` rows and repeats them down the matrix, so the
    result has rank at most ``ceil(n / 2^k)``: each fold halves the rank bound (a
    full-rank square matrix folded once has ``n / 2`` zero singular values). Rows are the
    presynaptic side, so a folded layer's drive depends on ``ceil(n / 2^k)`` input
    directions only. ``k = 0`` returns ``w``.
    """
    k = int(k)
    if k < 0:
        raise ValueError(f"fold needs k >= 0, got {k}.")
    n = int(np.shape(w)[0])
    block = max(1, math.ceil(n / 2**k))
    return w[np.arange(n) % block]


class Fold(AbstractInit):
    """``base``'s matrix folded ``k`` times (:func:`fold`): rank at most ``ceil(n_in / 2^k)``."""

    base: AbstractInit = Gaussian()
    k: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        if int(self.k) < 0:
            raise ValueError(f"Fold.k must be >= 0, got {self.k}.")

    def __call__(self, key: Array, n_in: int, n_out: int, dtype: Any = jnp.float32) -> Array:
        return fold(self.base(key, n_in, n_out, dtype), self.k)


def all_inits() -> list[AbstractInit]:
    """One of each initialisation (drives the contract tests)."""
    return [Gaussian(), Gaussian(0.5), Orthogonal(), Orthogonal(0.8), Fold(Gaussian(), 1)]
