"""The experiment interface of ``weakgrad reproduce``: frozen settings with ``quick()``,
``full()`` and ``tiny()`` presets, ``run(settings) -> result``; the result holds its data,
draws its figures, checks its claims and saves itself as a set (``weakgrad.io``).

:func:`all_experiments` is the one registry, in the study's order.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
import inspect
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from weakgrad.experiments.claims import Claim, Verdict

__all__ = [
    "ExperimentSettings",
    "ExperimentResult",
    "AbstractExperiment",
    "AbstractResumableExperiment",
    "RESULT_FILE",
    "claims_key",
    "computed_once",
    "all_experiments",
]

# Written inside each experiment's staged set: settings, claims, figures, seconds.
RESULT_FILE = "experiment.json"


@dataclasses.dataclass(frozen=True)
class ExperimentSettings:
    """Base of the experiments' frozen settings; ``as_dict`` is what is saved and compared
    for the cache (JSON types only)."""

    seed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


def positive_int(name: str, v: Any) -> None:
    """Settings check: ``v`` a whole number >= 1, else a ConfigError naming ``name``."""
    from weakgrad.errors import ConfigError

    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ConfigError(f"{name} = {v!r} must be a whole number >= 1.")


def positive_float(name: str, v: Any) -> None:
    """Settings check: ``v`` a finite number > 0, else a ConfigError naming ``name``."""
    import math

    from weakgrad.errors import ConfigError

    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
        raise ConfigError(f"{name} = {v!r} must be a finite number > 0.")


class ExperimentResult(abc.ABC):
    """What an experiment returns: ``settings``, ``data`` (names to numbers or arrays, the
    input of its claims' checks), figures, claims, and :meth:`save`."""

    experiment: AbstractExperiment
    settings: ExperimentSettings
    data: Mapping[str, Any]

    @abc.abstractmethod
    def figures(self) -> dict[str, Any]:
        """``{name: matplotlib figure}``; saved as ``name.png``."""

    @abc.abstractmethod
    def write_data(self, folder: Path) -> None:
        """Write the data files (CSV/NPZ/JSON through ``weakgrad.io``) into ``folder``."""

    def claims(self) -> list[tuple[Claim, Verdict, str]]:
        """Every claim of the experiment with its verdict and what was measured."""
        return [(c, *c.check(self.data)) for c in self.experiment.claims]

    def save(self, folder: str | os.PathLike, *, seconds: float | None = None) -> dict:
        """Write the data, ``NAME.png`` per figure and ``experiment.json`` (settings, claims,
        figures, seconds) into ``folder`` as a set (:func:`weakgrad.io.staged_outputs`,
        ``manifest.json`` last: a folder with a matching manifest holds one finished run).
        Returns what ``experiment.json`` holds."""
        from weakgrad.io import staged_outputs, write_json
        from weakgrad.plots import save_figure

        folder = Path(folder)
        with staged_outputs(folder, command=f"reproduce --only {self.experiment.name}") as d:
            self.write_data(d)
            names = []
            for name, fig in self.figures().items():
                save_figure(fig, d / f"{name}.png")
                names.append(f"{name}.png")
            record = {
                "experiment": self.experiment.name,
                "settings": self.settings.as_dict(),
                "claims_key": claims_key(self.experiment),
                "figures": names,
                "seconds": seconds,
                "claims": [
                    {"id": c.id, "verdict": v.value, "measured": m} for c, v, m in self.claims()
                ],
            }
            write_json(d / RESULT_FILE, record)
        return record


def claims_key(experiment: AbstractExperiment) -> str:
    """A fingerprint of the experiment's claims: ids, wording, and the source of the modules
    their checks live in and of the shared measures (:mod:`weakgrad.experiments.claims`),
    so a cached run whose verdicts came from other checks, or from other helpers of theirs
    (a roughness or jump measure), is run again."""
    from weakgrad.experiments import claims as shared

    h = hashlib.sha256()
    modules = {inspect.getmodule(c.check) for c in experiment.claims} | {shared}
    for module in sorted(modules, key=lambda m: m.__name__):
        h.update(inspect.getsource(module).encode())
    for c in experiment.claims:
        h.update(f"{c.id}\0{c.claim}\0{c.measures}\0".encode())
        h.update(inspect.getsource(c.check).encode())  # the check itself, wherever it lives
    return h.hexdigest()[:16]


class AbstractExperiment(abc.ABC):
    """One experiment of the study. Subclasses set ``name`` (used by ``--only`` and as the
    folder name), ``title``, ``section`` (the study's heading), ``claims`` and implement the
    presets and :meth:`run`."""

    name: ClassVar[str]
    title: ClassVar[str]
    section: ClassVar[str]
    claims: ClassVar[tuple[Claim, ...]]

    @abc.abstractmethod
    def quick(self) -> ExperimentSettings:
        """Small sizes: under a minute on 2 cores."""

    @abc.abstractmethod
    def full(self) -> ExperimentSettings:
        """The study's sizes."""

    @abc.abstractmethod
    def tiny(self) -> ExperimentSettings:
        """Test sizes: a few seconds, files and figures only (claims mean little here)."""

    @abc.abstractmethod
    def run(
        self, settings: ExperimentSettings, *, progress: Callable[[int], None] | None = None
    ) -> ExperimentResult:
        """Compute the experiment at ``settings``."""


class AbstractResumableExperiment(AbstractExperiment):
    """An experiment long enough to continue after a kill (the training curves): it
    implements :meth:`run_resumable`, which keeps its work in progress in a folder that
    outlives the process (``weakgrad reproduce`` passes ``DIR/<name>/partial/``, empties it
    when the settings or the experiment's code differ and removes it once the experiment is
    saved); :meth:`run` is that in a temporary folder."""

    def run(
        self, settings: ExperimentSettings, *, progress: Callable[[int], None] | None = None
    ) -> ExperimentResult:
        import tempfile

        with tempfile.TemporaryDirectory(prefix=f"wg_{self.name}_") as d:
            return self.run_resumable(settings, Path(d), progress=progress)

    @abc.abstractmethod
    def run_resumable(
        self,
        settings: ExperimentSettings,
        scratch: Path,
        *,
        progress: Callable[[int], None] | None = None,
    ) -> ExperimentResult:
        """Compute the experiment with its work in progress in ``scratch`` (continued from
        there when an earlier run at the same settings was killed)."""


def computed_once(path: Path, compute: Callable[[], Any]) -> Any:
    """``compute()``'s JSON-able value, kept in ``path`` (written atomically): read back
    from there when an earlier, killed run of the experiment computed it. For a resumable
    experiment made of independent parts (:class:`AbstractResumableExperiment`)."""
    from weakgrad.io import write_json

    if path.exists():
        return json.loads(path.read_text())
    value = compute()
    write_json(path, value)
    return value


def all_experiments() -> list[AbstractExperiment]:
    """Every experiment of ``weakgrad reproduce``, in the study's order (000, then the
    seeds that follow it: 001, 002, 003, 004)."""
    from weakgrad.experiments.compare import GradientFamilies
    from weakgrad.experiments.complete_graph import CompleteGraphTraining, SelfCoupledNeuron
    from weakgrad.experiments.degeneracy import (
        DeepLinearDegeneracy,
        MatrixProducts,
        StudyNetworkDegeneracy,
    )
    from weakgrad.experiments.descent import (
        DescentGrid,
        FdDescent,
        RegressionDescent,
        RegressionTangent,
    )
    from weakgrad.experiments.gradients import (
        HhShortGradient,
        MnistAnnGradient,
        MnistLinearGradient,
        NodePerturbationGradient,
    )
    from weakgrad.experiments.landscape import (
        SingleNeuronLandscape,
        TrialAveraging,
        TrialNoiseSweep,
    )
    from weakgrad.experiments.linear_toy import LinearToy
    from weakgrad.experiments.long_timeframe import InputTraces, UniformShift
    from weakgrad.experiments.memory import BennaFusiMemory
    from weakgrad.experiments.mollification import (
        BumpMollifier,
        MollifiedDescent,
        MollifiedLandscape,
    )
    from weakgrad.experiments.sigma_references import SigmaReferences
    from weakgrad.experiments.signal import CrossCorrelationLag
    from weakgrad.experiments.smoothing import ScoreVsQuadratureExperiment
    from weakgrad.experiments.spike_train import SpikeTrainReplication
    from weakgrad.experiments.surrogate import (
        ActivityTradeoff,
        SurrogateLoops,
        SurrogateMatching,
    )
    from weakgrad.experiments.training import AnnTraining, HhLongTraining, HhShortTraining
    from weakgrad.experiments.voltage import VoltageMollification

    return [
        # 000: the single neuron's landscape, descents and mollification
        SingleNeuronLandscape(),
        TrialAveraging(),
        TrialNoiseSweep(),
        FdDescent(),
        RegressionTangent(),
        RegressionDescent(),
        BumpMollifier(),
        MollifiedLandscape(),
        MollifiedDescent(),
        DescentGrid(),
        VoltageMollification(),
        ScoreVsQuadratureExperiment(),
        # 000: node perturbation, the complete graph
        NodePerturbationGradient(),
        CompleteGraphTraining(),
        SelfCoupledNeuron(),
        # 000: MNIST (linear toy, linear, ANN; HH short and long timeframes)
        LinearToy(),
        MnistLinearGradient(),
        MnistAnnGradient(),
        AnnTraining(),
        HhShortGradient(),
        SigmaReferences(),
        HhShortTraining(),
        InputTraces(),
        UniformShift(),
        HhLongTraining(),
        CrossCorrelationLag(),
        # 001: replicating recorded spike trains
        SpikeTrainReplication(),
        # 002: surrogate gradients in stochastic networks; 003: performance vs energy; every
        # gradient family (surrogate, exact, autodiff, weak) on one task
        SurrogateMatching(),
        SurrogateLoops(),
        ActivityTradeoff(),
        GradientFamilies(),
        # 004: degeneracy and optimal synaptic memory
        MatrixProducts(),
        DeepLinearDegeneracy(),
        StudyNetworkDegeneracy(),
        BennaFusiMemory(),
    ]


@functools.lru_cache(maxsize=8)
def swept_curve(settings: Any) -> Any:
    """``weakgrad.analysis.landscape.landscape_study(settings).curve``, swept once per
    process for every experiment that asks for the same curve (the single-neuron landscape,
    trial averaging, the descents and the mollified curve share theirs)."""
    from weakgrad.analysis.landscape import landscape_study

    return landscape_study(settings).curve
