"""The interface every gradient estimator implements, in the spirit of optax.

``state = est.init(params)``; ``grads, state, info = est.estimate(objective, params, state,
key=key)``. ``grads`` has the structure of ``params`` and goes straight into any optax
optimiser. Estimators are frozen equinox modules, so ``jax.jit`` (or ``eqx.filter_jit``) of a
function taking one as an argument works.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.flatten_util import ravel_pytree

from weakgrad.objectives.base import AbstractObjective

__all__ = [
    "AbstractEstimator",
    "AbstractSamplingEstimator",
    "EstimatorInfo",
    "FlatObjective",
]

# A population evaluation in flat coordinates: (thetas (S, d), keys (S,)) -> losses (S,).
FlatObjective = Callable[[Array, Array], Array]


class EstimatorInfo(eqx.Module):
    """What one estimate cost and how sure it is.

    Attributes:
        evals: number of forward evaluations of the objective (one evaluation = the loss of
            one parameter sample on the whole batch).
        loss: mean loss over those evaluations (the unperturbed loss where the method
            evaluates it).
        stderr: standard error of each gradient component (structure of ``params``), or
            None where the method gives none.
    """

    evals: Array
    loss: Array
    stderr: Any = None


class AbstractEstimator(eqx.Module):
    """A gradient estimator: explicit state, one pure ``estimate``."""

    def init(self, params: Any) -> Any:
        """The estimator's state for ``params`` (most estimators are stateless: ``()``)."""
        return ()

    def for_layer(self, layer: int) -> AbstractEstimator | None:
        """This estimator working on layer ``layer`` alone, for estimators that can do so
        more cheaply than by masking the gradient (``None``: mask; :class:`Alternate`)."""
        return None

    @abc.abstractmethod
    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        """Estimate the gradient of ``objective`` at ``params``."""


def _check_positive(owner: str, **values: Any) -> None:
    for name, v in values.items():
        if not (isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < math.inf):
            raise ValueError(f"{owner}.{name} must be a positive finite number, got {v!r}.")


def _check_samples(owner: str, samples: Any, minimum: int = 1) -> None:
    if not (isinstance(samples, int) and not isinstance(samples, bool) and samples >= minimum):
        raise ValueError(
            f"{owner}.samples must be an int >= {minimum} (number of perturbations per "
            f"estimate), got {samples!r}."
        )


def _check_pairs(owner: str, samples: Any, antithetic: bool) -> None:
    """``samples`` >= 1, and even (>= 2) when perturbations come in +/- pairs."""
    _check_samples(owner, samples, 2 if antithetic else 1)
    if antithetic and samples % 2:
        raise ValueError(
            f"{owner}.samples must be even with antithetic=True (pairs), got {samples}; "
            f"use {samples + 1} or antithetic=False."
        )


class AbstractSamplingEstimator(AbstractEstimator):
    """An estimator that only evaluates the objective at perturbed parameters.

    Subclasses work on the flattened parameter vector ``theta`` (``d`` entries) through
    :meth:`estimate_flat`; this is what lets :class:`~weakgrad.estimators.Masked` restrict
    them to a subset of coordinates, and host objectives see plain vectors.
    """

    def init(self, params: Any) -> Any:
        return self.init_flat(ravel_pytree(params)[0])

    def init_flat(self, theta: Array) -> Any:
        return ()

    @abc.abstractmethod
    def estimate_flat(
        self, f: FlatObjective, theta: Array, state: Any, *, key: Array
    ) -> tuple[Array, Any, EstimatorInfo]:
        """Gradient ``(d,)`` of the loss at ``theta``; ``info.stderr`` is ``(d,)`` or None."""

    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        theta, unravel = ravel_pytree(params)
        if not jnp.issubdtype(theta.dtype, jnp.floating):
            raise TypeError(f"params must be floating point, got dtype {theta.dtype}.")

        def f(thetas: Array, keys: Array) -> Array:
            return objective.population(jax.vmap(unravel)(thetas), keys)

        g, state, info = self.estimate_flat(f, theta, state, key=key)
        stderr = None if info.stderr is None else unravel(info.stderr)
        return unravel(g.astype(theta.dtype)), state, EstimatorInfo(info.evals, info.loss, stderr)
