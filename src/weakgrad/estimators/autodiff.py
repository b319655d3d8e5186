"""Autodiff (backpropagation through time) and surrogate-gradient BPTT: the baselines.

:class:`Autodiff` differentiates the objective with ``jax.grad``: exact where the loss is
smooth, useless where spikes make it piecewise constant or chaotic (study 000).
:class:`SurrogateGradient` does the same after giving every spiking neuron of a network
objective a surrogate derivative (:mod:`weakgrad.sim.surrogates`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax import Array

from weakgrad.estimators._base import AbstractEstimator, EstimatorInfo
from weakgrad.objectives.base import AbstractObjective
from weakgrad.objectives.network import AbstractNetworkObjective
from weakgrad.sim.surrogates import AbstractSurrogate

__all__ = ["Autodiff", "SurrogateGradient"]


def _clip(grads: Any, clip: float | None) -> Any:
    if clip is None:
        return grads
    norm = optax.tree.norm(grads)
    scale = jnp.minimum(1.0, clip / jnp.maximum(norm, 1e-30))
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)


def _check_clip(owner: str, clip: Any) -> None:
    if clip is not None and not (isinstance(clip, int | float) and clip > 0):
        raise ValueError(
            f"{owner}.clip must be None or a positive global-norm bound, got {clip!r}."
        )


class Autodiff(AbstractEstimator):
    """``jax.grad`` of the objective (one forward and one backward pass).

    Attributes:
        clip: optional bound on the gradient's global L2 norm (exploding BPTT gradients).
    """

    clip: float | None = None

    def __check_init__(self):
        _check_clip("Autodiff", self.clip)

    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        loss, grads = jax.value_and_grad(objective)(params, key)
        return _clip(grads, self.clip), state, EstimatorInfo(jnp.asarray(1, jnp.int32), loss)


class SurrogateGradient(AbstractEstimator):
    """BPTT with surrogate spike derivatives.

    Attributes:
        surrogate: the surrogate given to every spiking neuron of the objective's network.
        clip: optional bound on the gradient's global L2 norm.
    """

    surrogate: AbstractSurrogate
    clip: float | None = None

    def __check_init__(self):
        if not isinstance(self.surrogate, AbstractSurrogate):
            raise TypeError(
                "SurrogateGradient.surrogate must be a weakgrad.sim.surrogates surrogate, e.g. "
                f"SuperSpike(beta=10.0), got {self.surrogate!r}."
            )
        _check_clip("SurrogateGradient", self.clip)

    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        if not isinstance(objective, AbstractNetworkObjective):
            raise TypeError(
                f"SurrogateGradient needs an objective built on a weakgrad Network "
                f"(NetworkObjective), got {type(objective).__name__}; for your own loss "
                "function give its neurons a surrogate and use Autodiff."
            )
        return Autodiff(self.clip).estimate(
            objective.with_surrogate(self.surrogate), params, state, key=key
        )
