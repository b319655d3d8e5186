"""Optimisers from a config: optax with per-layer update multipliers, a cosine schedule and
decoupled weight decay."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import jax
import optax

if TYPE_CHECKING:
    from weakgrad.config import OptimizerConfig

__all__ = ["make_optimizer", "scale_by_layer"]


def scale_by_layer(scales: tuple[float, ...]) -> optax.GradientTransformation:
    """Multiply the updates of layer ``i`` (the ``i``-th top-level child of the parameters,
    e.g. one dict per layer) by ``scales[i]``: per-layer learning rates."""

    def update(updates, state, params=None):
        del params
        if not isinstance(updates, (tuple, list)) or len(updates) != len(scales):
            n = len(updates) if isinstance(updates, (tuple, list)) else 1
            raise ValueError(
                f"optimizer.layer_scale has {len(scales)} entries but the parameters have "
                f"{n} layers; give one multiplier per layer."
            )
        pairs = zip(updates, scales, strict=True)
        out = [jax.tree.map(lambda u, c=c: c * u, layer) for layer, c in pairs]
        return type(updates)(out), state

    return optax.GradientTransformation(lambda params: optax.EmptyState(), update)


# Cached: the same section gives the same transformation object, so a jitted training step
# that takes the optimiser as an argument compiles once per configuration, not per run.
@functools.lru_cache(maxsize=32)
def make_optimizer(cfg: OptimizerConfig, steps: int | None = None) -> optax.GradientTransformation:
    """The optimiser a config names, with per-layer update multipliers if it gives them;
    ``steps`` is the run's length for a decaying schedule."""
    return standard_promotion(_optimizer(cfg, steps))


def standard_promotion(opt: optax.GradientTransformation) -> optax.GradientTransformation:
    """``opt`` with its ``init`` and ``update`` traced under JAX's standard dtype promotion:
    optax's bias corrections and schedules mix Python floats with int32 step counts, which
    strict promotion (as weakgrad's tests use) rejects. The numbers are unchanged."""

    def init(params):
        with jax.numpy_dtype_promotion("standard"):
            return opt.init(params)

    def update(updates, state, params=None):
        with jax.numpy_dtype_promotion("standard"):
            return opt.update(updates, state, params)

    return optax.GradientTransformation(init, update)


def _optimizer(cfg: OptimizerConfig, steps: int | None) -> optax.GradientTransformation:
    lr: Any = cfg.learning_rate
    if cfg.schedule == "cosine":
        if steps is None:
            raise ValueError("optimizer.schedule = 'cosine' needs the number of steps.")
        lr = optax.cosine_decay_schedule(cfg.learning_rate, steps)
    if cfg.weight_decay:
        # Decoupled (AdamW-style) decay of the weights, not the biases (they set thresholds),
        # times the scheduled learning rate but not the layer scales.
        return optax.chain(
            optax.identity() if cfg.name == "sgd" else optax.scale_by_adam(),
            scale_by_layer(cfg.layer_scale) if cfg.layer_scale else optax.identity(),
            optax.add_decayed_weights(cfg.weight_decay, mask=_weights_only),
            optax.scale_by_learning_rate(lr),
        )
    base = optax.sgd(lr) if cfg.name == "sgd" else optax.adam(lr)
    return optax.chain(base, scale_by_layer(cfg.layer_scale)) if cfg.layer_scale else base


def _weights_only(params: Any) -> Any:
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "weight" in jax.tree_util.keystr(path), params
    )
