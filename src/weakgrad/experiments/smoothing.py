"""Study 000, "Computing Gradient of Molified Loss": the log-likelihood trick (Monte Carlo)
against quadrature for the gradient of the Gaussian-smoothed toy loss on [-10, 10]. The
numbers are :func:`weakgrad.analysis.score_vs_quadrature.score_vs_quadrature`'s."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from weakgrad.experiments.base import AbstractExperiment, ExperimentResult, ExperimentSettings
from weakgrad.experiments.claims import Claim, Verdict

__all__ = [
    "ScoreSettings",
    "ScoreVsQuadratureExperiment",
    "check_monte_carlo_blows_up",
    "check_quadrature_accurate",
]

SECTION = "Computing Gradient of Molified Loss"


@dataclasses.dataclass(frozen=True)
class ScoreSettings(ExperimentSettings):
    """``points`` points on [-10, 10], Gaussian smoothing of std ``sigma``, ``samples``
    Monte-Carlo samples (and as many quadrature nodes) per point."""

    points: int = 201
    sigma: float = 1.0
    samples: tuple[int, ...] = (100, 1000)


def check_monte_carlo_blows_up(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """RMS error at |x| > 8 (where the loss grows quadratically) with 100 samples: Monte
    Carlo at least 10x quadrature's reproduces "blows up"; at least 2x: partly."""
    mc = data["errors"]["monte_carlo_100"]["rms_border"]
    quad = data["errors"]["quadrature_100"]["rms_border"]
    ratio = mc / quad if quad > 0 else float("inf")
    verdict = (
        Verdict.REPRODUCED if ratio >= 10 else Verdict.PARTLY if ratio >= 2
        else Verdict.NOT_REPRODUCED
    )  # fmt: skip
    return verdict, (
        f"RMS error at |x| > 8, 100 samples: Monte Carlo {mc:.3g}, quadrature {quad:.3g} "
        f"(ratio {ratio:.3g})"
    )


def check_quadrature_accurate(data: Mapping[str, Any]) -> tuple[Verdict, str]:
    """Quadrature with 100 nodes: more accurate than Monte Carlo with 100 samples over all x
    and not disturbed by the borders (its error at |x| > 8 at most 2x its overall error):
    reproduced; only the first: partly."""
    e = data["errors"]
    q, m = e["quadrature_100"], e["monte_carlo_100"]
    better = q["rms"] < m["rms"]
    steady = q["rms_border"] <= 2 * q["rms"]
    measured = (
        f"RMS error, 100 samples: quadrature {q['rms']:.3g} overall, {q['rms_border']:.3g} at "
        f"|x| > 8; Monte Carlo {m['rms']:.3g} overall"
    )
    if better and steady:
        return Verdict.REPRODUCED, measured
    return (Verdict.PARTLY if better else Verdict.NOT_REPRODUCED), measured


BLOWS_UP = Claim(
    id="monte-carlo-blows-up-at-borders",
    section=SECTION,
    claim="The loss grows quadratically on the borders, which makes the Monte-Carlo "
    "log-likelihood estimate (100 samples) blow up in these regions.",
    measures="RMS error against a fine-grid reference at |x| > 8, Monte Carlo / quadrature "
    "with 100 samples each; reproduced >= 10, partly >= 2.",
    check=check_monte_carlo_blows_up,
)
QUADRATURE = Claim(
    id="quadrature-more-accurate",
    section=SECTION,
    claim="The integration approach is more accurate for a small number of samples (100) in "
    "1-D, and the growing loss at the borders does not affect it.",
    measures="quadrature's RMS error below Monte Carlo's over [-10, 10] and at most 2x "
    "larger at |x| > 8 than overall: reproduced; only the first: partly.",
    check=check_quadrature_accurate,
)


@dataclasses.dataclass(frozen=True)
class _ScoreResult(ExperimentResult):
    experiment: AbstractExperiment
    settings: ScoreSettings
    data: Mapping[str, Any]
    study: Any  # ScoreVsQuadrature

    def write_data(self, folder: Path) -> None:
        from weakgrad.io import write_csv, write_json

        write_csv(folder / "scorecheck.csv", self.study.header(), self.study.rows())
        write_json(folder / "scorecheck.json", self.study.as_dict())

    def figures(self) -> dict[str, Any]:
        from weakgrad.plots import plot_score_vs_quadrature

        title = "gradient of the Gaussian-smoothed toy loss: Monte Carlo vs quadrature"
        return {"scorecheck": plot_score_vs_quadrature(self.study, title=title)}


class ScoreVsQuadratureExperiment(AbstractExperiment):
    """The log-likelihood trick vs quadrature on the toy loss, 100 and 1000 samples."""

    name = "score-vs-quadrature"
    title = "Log-likelihood trick vs quadrature on the toy loss"
    section = SECTION
    claims = (BLOWS_UP, QUADRATURE)

    def quick(self) -> ScoreSettings:
        return ScoreSettings(points=201)

    def full(self) -> ScoreSettings:
        return ScoreSettings(points=201)

    def tiny(self) -> ScoreSettings:
        return ScoreSettings(points=41, samples=(100,))

    def run(self, settings, *, progress: Callable[[int], None] | None = None) -> _ScoreResult:
        from weakgrad.analysis.score_vs_quadrature import score_vs_quadrature

        s = settings
        study = score_vs_quadrature(sigma=s.sigma, samples=s.samples, seed=s.seed, points=s.points)
        return _ScoreResult(self, s, {"errors": study.errors()}, study)
