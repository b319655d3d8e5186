"""Gradient estimators behind one interface (see :mod:`weakgrad.estimators._base`).

``all_estimators()`` lists one configured instance of each, for contract tests and for the
``gradcheck`` command.
"""

from weakgrad.estimators._base import (
    AbstractEstimator,
    AbstractSamplingEstimator,
    EstimatorInfo,
)
from weakgrad.estimators.autodiff import Autodiff, SurrogateGradient
from weakgrad.estimators.combinators import Alternate, LayerOnly, Masked, layer_groups
from weakgrad.estimators.eventprop import EventProp
from weakgrad.estimators.finite_difference import SPSA, CentralDifference
from weakgrad.estimators.mollified import MollifiedMonteCarlo, MollifiedQuadrature
from weakgrad.estimators.node_perturbation import NodePerturbation, StepwiseNodePerturbation
from weakgrad.estimators.regression import Regression, regression_slope
from weakgrad.estimators.smoothing import GaussianSmoothing, centered_ranks

__all__ = [
    "AbstractEstimator",
    "AbstractSamplingEstimator",
    "EstimatorInfo",
    "Autodiff",
    "SurrogateGradient",
    "EventProp",
    "Alternate",
    "LayerOnly",
    "Masked",
    "layer_groups",
    "CentralDifference",
    "SPSA",
    "MollifiedMonteCarlo",
    "MollifiedQuadrature",
    "NodePerturbation",
    "StepwiseNodePerturbation",
    "Regression",
    "regression_slope",
    "GaussianSmoothing",
    "centered_ranks",
    "all_estimators",
    "network_estimators",
]


def all_estimators() -> list[AbstractEstimator]:
    """One instance of every estimator that works on any objective, with small settings.

    Node perturbation (both variants) and surrogate gradients need a network objective;
    ``network_estimators()`` lists them. :class:`EventProp` needs an event-simulated LIF
    objective (``weakgrad.objectives.events.EventObjective``), so neither list holds it: its
    contract (finite differences, jit, optax, lost spikes) is ``tests/test_eventprop.py``."""
    return [
        CentralDifference(step=1e-3),
        SPSA(step=1e-2, samples=32),
        Regression(sigma=1e-2, samples=64),
        Regression(sigma=1e-2, samples=64, refresh_every=4),
        Regression(sigma=1e-2, samples=64, antithetic=True),
        GaussianSmoothing(sigma=1e-2, samples=64),
        GaussianSmoothing(sigma=1e-2, samples=64, antithetic=False, rank_shaping=True),
        MollifiedMonteCarlo(width=1e-2, samples=64),
        Autodiff(),
        Alternate(GaussianSmoothing(sigma=1e-2, samples=64)),
        Masked(Regression(sigma=1e-2, samples=64), {"a": True, "b": False}),
        LayerOnly(Regression(sigma=1e-2, samples=64), 0),
    ]


def network_estimators() -> list[AbstractEstimator]:
    """Estimators that need a :class:`~weakgrad.objectives.network.NetworkObjective`."""
    from weakgrad.sim.surrogates import SuperSpike

    return [
        NodePerturbation(sigma=1e-2, samples=64),
        NodePerturbation(sigma=(0.5, 1e-2), samples=8, hold=None, antithetic=True),
        NodePerturbation(sigma=1e-2, samples=(8, 4), layers=(1,)),  # samples per layer
        StepwiseNodePerturbation(sigma=1e-2, samples=64),
        SurrogateGradient(SuperSpike()),
    ]
