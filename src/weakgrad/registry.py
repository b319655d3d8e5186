"""The one place where names (in configs and on the command line) map to classes.

- :func:`grid_estimator` and :data:`GRID_ESTIMATORS`: the estimators of the ``gradcheck``
  command, built from a sample count and a perturbation size.
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
    "GRID_ESTIMATORS",
    "HH_READOUTS",
    "MNIST_INITS",
    "MNIST_MODELS",
    "OPTIMIZERS",
    "SCHEDULES",
    "SPIKE_LOSSES",
    "TASKS",
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
TASKS = ("mnist", "spike-train")

GRID_ESTIMATORS = (
    "regression",
    "smoothing",
    "spsa",
    "mollified",
    "node",
    "node-stepwise",
    "fd",
    "autodiff",
)


def grid_estimator(
    name: str, *, samples: int, sigma: float, layers: tuple[int, ...] | None, dim: int
) -> AbstractEstimator:
    """The estimator ``name`` for one point of a (samples, sigma) grid.

    ``sigma`` is the perturbation size: the weight std of the weight-space methods, the
    finite-difference step (fd, spsa), the pre-activation noise std of node perturbation,
    and sqrt(``dim``) times the per-coordinate scale of the mollifier's bump (a bump in
    ``dim`` dimensions concentrates near its radius). ``layers``: the layers node
    perturbation perturbs (None: all). Sample counts are rounded to what each method
    needs: at least 2 for regression, node perturbation and the paired methods (smoothing,
    mollified: rounded down to even), ``samples // 2`` pairs for SPSA.
    """
    from weakgrad import estimators as E

    s, sg = samples, sigma
    if name == "regression":
        return E.Regression(sigma=sg, samples=max(s, 2))
    if name == "smoothing":
        return E.GaussianSmoothing(sigma=sg, samples=max(2, s - s % 2))
    if name == "spsa":
        return E.SPSA(step=sg, samples=max(1, s // 2))
    if name == "mollified":
        return E.MollifiedMonteCarlo(width=sg * dim**0.5, samples=max(2, s - s % 2))
    if name == "node":
        return E.NodePerturbation(sigma=sg, samples=max(2, s), layers=layers)
    if name == "node-stepwise":
        return E.StepwiseNodePerturbation(sigma=sg, samples=s, layers=layers)
    if name == "fd":
        return E.CentralDifference(step=sg)
    if name == "autodiff":
        return E.Autodiff()
    raise ConfigError(f"unknown estimator {name!r}; choose from {', '.join(GRID_ESTIMATORS)}.")


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
