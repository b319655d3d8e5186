"""The interface every training task implements.

A task owns its data and its objective; the training loop (:mod:`weakgrad.training.loop`)
asks it for the objective of each step, for validation metrics on evaluation steps and
for the final scores, and writes nothing on its behalf but what it returns. Figures are
returned, not saved: the caller at the top saves them.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
from jax import Array

__all__ = ["AbstractTask", "batch_indices", "check_batch_sizes"]


def check_batch_sizes(
    batch_size: int, n_train: int, eval_size: int, n_val: int, noun: str, source: str = "",
    test_size: int | None = None, n_test: int = 0,
) -> None:  # fmt: skip
    """ConfigErrors naming train.batch_size / train.eval_size / train.test_size when they
    exceed the ``n_train`` training, ``n_val`` validation or ``n_test`` test ``noun`` (e.g.
    "digits"; ``source``: where they come from, for the message)."""
    from weakgrad.errors import ConfigError

    if test_size is not None and test_size > n_test:
        raise ConfigError(
            f"train.test_size = {test_size} exceeds the {n_test} test {noun}; use at most "
            f"{n_test}, or leave it out to score all of them."
        )

    if batch_size > n_train:
        raise ConfigError(
            f"train.batch_size = {batch_size} exceeds the {n_train} training {noun}; use at "
            f"most {n_train}."
        )
    if eval_size > n_val:
        of = f" of {source}" if source else ""
        raise ConfigError(
            f"train.eval_size = {eval_size} exceeds the {n_val} validation {noun}{of}; use "
            f"at most {n_val}."
        )


class AbstractTask(abc.ABC):
    """A training task: data, an objective per step, validation and final scores.

    Subclasses are final; they implement every abstract method. Everything a task returns
    is a function of its arguments (step, parameters, key), so a resumed run sees the same
    batches and scores as an uninterrupted one.
    """

    @abc.abstractmethod
    def initial_params(self) -> Any:
        """The parameters training starts from (a pytree, one child per layer)."""

    @abc.abstractmethod
    def objective_at(self, step: int) -> Any:
        """The objective (an ``AbstractObjective``) of training step ``step``."""

    @abc.abstractmethod
    def validate(self, params: Any, key: Array) -> tuple[float, float]:
        """(validation loss, validation accuracy or NaN where the task has none)."""

    @abc.abstractmethod
    def score(self, params: Any, key: Array) -> dict[str, Any]:
        """Final metrics of ``params`` (JSON-ready numbers and strings)."""

    def figures(self, params: Any, key: Array) -> dict[str, Any]:
        """Figures of ``params`` by file name (``{"raster.png": fig}``); none by default."""
        del params, key
        return {}


def batch_indices(step: int, n: int, batch: int, seed: int) -> np.ndarray:
    """The batch of ``step``: a fresh permutation of the training set every epoch."""
    per_epoch = max(n // batch, 1)
    epoch, i = divmod(step, per_epoch)
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    return perm[i * batch : (i + 1) * batch]
