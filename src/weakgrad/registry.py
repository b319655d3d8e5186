"""The one place where names (in configs and on the command line) map to classes.

- :func:`grid_estimator` and :func:`estimator_names`: the estimators of the ``gradcheck``
  command, built by the same config sections from a sample count and a perturbation size.
- :func:`estimator_sections` and :func:`task_sections`: name -> config section class of a
  training config's ``[estimator]`` and ``[task]`` (each section validates its own fields
  and builds its object; see :mod:`weakgrad.config`).
- :data:`MNIST_MODELS`, :data:`MNIST_INITS`, :data:`HH_READOUTS`, :data:`SPIKE_LOSSES`,
  :data:`OPTIMIZERS`, :data:`SCHEDULES`: the names configs, tasks and the CLI accept.

Importing this module imports no JAX (the CLI's ``--help`` stays fast): classes are
imported inside the functions that build them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from weakgrad.errors import ConfigError

if TYPE_CHECKING:
    from weakgrad.estimators import AbstractEstimator

__all__ = [
    "HH_READOUTS",
    "MNIST_INITS",
    "MNIST_MODELS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SPIKE_LOSSES",
    "SURROGATES",
    "TASKS",
    "YINYANG_LOSSES",
    "estimator_names",
    "estimator_sections",
    "grid_estimator",
    "register_estimator_section",
    "register_task_section",
    "task_sections",
]

# MNIST models (study 000): 784-100-10 with linear units, sigmoid units, or Hodgkin-Huxley
# neurons with graded synapses.
MNIST_MODELS = ("linear", "ann", "hh")
MNIST_INITS = ("gaussian", "orthogonal")
# HH readouts of the MNIST network: mean membrane potential or mean graded release.
HH_READOUTS = ("voltage", "release")
SPIKE_LOSSES = ("van-rossum", "cross-correlation")
OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")
TASKS = ("mnist", "spike-train", "yinyang", "latency-mnist")
# Yin-Yang (event-simulated LIF network): the max-over-time output potential or the
# time-to-first-spike loss; the surrogate derivatives surrogate-gradient configs name.
YINYANG_LOSSES = ("max-voltage", "first-spike")
SURROGATES = ("superspike", "sigmoid")


def grid_estimator(
    name: str, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
) -> AbstractEstimator:
    """The estimator ``name`` at one point of a (samples, sigma) grid, built by its config
    section (:meth:`weakgrad.config.EstimatorSection.for_grid`): one table of names for
    configs and the ``gradcheck`` command, and the same rounding of ``samples`` in both.

    ``sigma`` is the perturbation size: the weight std of the weight-space methods, the
    finite-difference step (fd, spsa), the pre-activation noise std of node perturbation,
    and the per-coordinate scale of the mollifier's bump. ``layers``: the layers node
    perturbation perturbs (None: all); ``dim``: the number of compared parameters.
    """
    sections = estimator_sections()
    if name not in sections:
        raise ConfigError(f"unknown estimator {name!r}; choose from {', '.join(sections)}.")
    return sections[name].for_grid(samples=samples, sigma=sigma, layers=layers, dim=dim)


def estimator_names() -> tuple[str, ...]:
    """Every estimator name configs and ``gradcheck`` accept, in registration order."""
    return tuple(estimator_sections())


# Config sections register themselves here (weakgrad.config defines them); the accessors
# import that module first, so a caller never sees a half-filled table.
_ESTIMATOR_SECTIONS: dict[str, type] = {}
_TASK_SECTIONS: dict[str, type] = {}
_T = TypeVar("_T", bound=type)


def _register(table: dict[str, type], name: str) -> Callable[[_T], _T]:
    def add(cls: _T) -> _T:
        if name in table and table[name] is not cls:
            raise RuntimeError(f"config section {name!r} registered twice.")
        table[name] = cls
        return cls

    return add


def register_estimator_section(name: str) -> Callable[[_T], _T]:
    """Class decorator: ``[estimator] name = NAME`` selects this section class."""
    return _register(_ESTIMATOR_SECTIONS, name)


def register_task_section(name: str) -> Callable[[_T], _T]:
    """Class decorator: ``[task] name = NAME`` selects this section class."""
    return _register(_TASK_SECTIONS, name)


def estimator_sections() -> Mapping[str, Any]:
    """``[estimator] name`` -> its section class (read-only)."""
    import weakgrad.config  # noqa: F401  (registers the sections)

    return MappingProxyType(_ESTIMATOR_SECTIONS)


def task_sections() -> Mapping[str, Any]:
    """``[task] name`` -> its section class (read-only)."""
    import weakgrad.config  # noqa: F401  (registers the sections)

    return MappingProxyType(_TASK_SECTIONS)
