"""Node perturbation: perturb a layer's pre-activations instead of its weights.

For ``alpha_i = x_{i-1} W_i + b_i`` the chain rule gives ``dL/dW_i = x_{i-1}^T dL/dalpha_i``,
so noise on the ``n_out`` pre-activations replaces noise on the ``n_in * n_out`` weights
(study 000, "Optimizing Methods to Make Them VIABLE"). In a network simulated over time the
noise ``xi(t) ~ N(0, sigma^2)`` is injected at every step and the neurons run freely with
it (the study's second variant; Fiete & Seung, PRL 2006). To first order in ``sigma``,

``dL/dW_i ~ E[(L(xi) - b) sum_t x_{i-1}(t)^T xi(t)] / sigma^2``.

Implementation: ``samples`` perturbed simulations of each example give the losses; the
baseline ``b`` is the mean over samples (with the factor ``S / (S - 1)`` that makes it
unbiased). One further unperturbed simulation per example regenerates every sample's noise
from its counter-based key and accumulates ``sum_t x(t)^T sum_s c_s xi_s(t)``: memory is
one weight matrix per example, not per sample, and the input ``x(t)`` is taken from the
unperturbed run (exact for feed-forward layers, first-order for recurrent weights).
Noise is independent per example, and each example's loss is used on its own, so the
variance does not grow with the batch.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array

from weakgrad.estimators._base import AbstractEstimator, EstimatorInfo, _check_positive
from weakgrad.network import NodeNoise
from weakgrad.objective import AbstractObjective, _shard_population
from weakgrad.random import stream_keys

__all__ = ["NodePerturbation"]


class NodePerturbation(AbstractEstimator):
    """Free-running node perturbation of one or more layers of a network objective.

    Attributes:
        sigma: standard deviation of the per-step noise on the pre-activations (units of
            the layer's drive: uA/cm^2 for Hodgkin-Huxley layers).
        samples: perturbed simulations per example (>= 2); ``samples + 1`` evaluations.
        layers: indices of the perturbed layers (None: all); the gradient of the other
            layers' parameters is 0. Wrap in ``Alternate`` with layer groups, or pass one
            layer, to perturb one layer at a time.
    """

    sigma: float = 0.1
    samples: int = eqx.field(static=True, default=32)
    layers: tuple[int, ...] | None = eqx.field(static=True, default=None)

    def __check_init__(self):
        _check_positive("NodePerturbation", sigma=self.sigma)
        if not (isinstance(self.samples, int) and self.samples >= 2):
            raise ValueError(
                f"NodePerturbation.samples must be an int >= 2 (the baseline is their mean), "
                f"got {self.samples!r}."
            )

    def estimate(
        self, objective: AbstractObjective, params: Any, state: Any, *, key: Array
    ) -> tuple[Any, Any, EstimatorInfo]:
        if not hasattr(objective, "eligibility"):
            raise TypeError(
                "NodePerturbation perturbs a network's pre-activations and needs a "
                f"NetworkObjective, got {type(objective).__name__}; use a weight-space "
                "estimator (Regression, GaussianSmoothing) for other objectives."
            )
        n_layers = len(objective.net.layers)
        layers = tuple(range(n_layers)) if self.layers is None else self.layers
        if not layers or any(not -n_layers <= i < n_layers for i in layers):
            raise ValueError(
                f"NodePerturbation.layers={self.layers} must name layers of the "
                f"{n_layers}-layer network."
            )
        layers = tuple(sorted({i % n_layers for i in layers}))
        s, b = self.samples, objective.batch_size
        dtype = jax.tree_util.tree_leaves(params)[0].dtype
        sigma = jnp.asarray(self.sigma, dtype)
        k_noise, k_sim = jax.random.split(key)
        # Key words of every (sample, example) noise stream, per layer: (S, B, 2, n).
        words = {
            i: jnp.moveaxis(
                stream_keys(jax.random.fold_in(k_noise, i), (s, b, objective.net.layers[i].n_out)),
                0,
                2,
            )
            for i in layers
        }

        def perturbed(words_s):  # losses (B,) of sample s, each example its own stream
            noise = tuple(
                NodeNoise(i, words_s[i][:, None], jnp.ones((b, 1), dtype), jnp.full((b,), sigma))
                for i in layers
            )
            return objective.per_example(params, k_sim, noise)

        sharded, _ = _shard_population(words)
        losses = jax.vmap(perturbed)(sharded)[:s]  # (S, B)
        coeff = (losses - losses.mean(0)) / (sigma * sigma * (s - 1) * b)  # (S, B)
        noise = tuple(
            NodeNoise(
                i,
                jnp.moveaxis(words[i], 0, 1),  # (B, S, 2, n)
                coeff.T,  # (B, S)
                jnp.full((b,), sigma),
                inject=False,
                correlate=True,
            )
            for i in layers
        )
        base_losses, elig = objective.eligibility(params, k_sim, noise)
        grads = jax.tree.map(jnp.zeros_like, params)
        grads = list(grads)
        for j, i in enumerate(layers):
            grads[i] = {name: elig[j][name].astype(dtype) for name in grads[i]}
        info = EstimatorInfo(jnp.asarray(s + 1, jnp.int32), base_losses.mean())
        return tuple(grads), state, info
