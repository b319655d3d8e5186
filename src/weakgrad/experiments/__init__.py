"""The study as experiments: settings (quick/full presets) -> result (data, figures,
claims); :func:`reproduce` runs them into a folder and writes ``report.html`` and
``claims.json``. Imports are light (no JAX) until an experiment runs."""

from weakgrad.experiments.base import (
    AbstractExperiment,
    ExperimentResult,
    ExperimentSettings,
    all_experiments,
)
from weakgrad.experiments.claims import Claim, Verdict
from weakgrad.experiments.runner import ReproduceResult, reproduce

__all__ = [
    "AbstractExperiment",
    "Claim",
    "ExperimentResult",
    "ExperimentSettings",
    "ReproduceResult",
    "Verdict",
    "all_experiments",
    "reproduce",
]
