"""Claims of the study: one sentence of 000 (quoted or closely paraphrased, with its section),
a measurable test of it and a verdict.

A claim's ``check(data) -> (Verdict, measured)`` is a pure function of the experiment's data
(a mapping of names to numbers or arrays), so it can be tested on data made to pass and made
to fail it. Thresholds come from the sentence (its wording, its precision), chosen before
looking at weakgrad's numbers, and stated in ``measures``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Verdict",
    "Claim",
    "Check",
    "jump_mask",
    "roughness",
    "low_loss_level",
]


class Verdict(enum.Enum):
    """How a claim came out in weakgrad. ``FAILED``: the experiment raised."""

    REPRODUCED = "reproduced"
    PARTLY = "partly"
    NOT_REPRODUCED = "not reproduced"
    FAILED = "failed"


Check = Callable[[Mapping[str, Any]], tuple[Verdict, str]]


@dataclass(frozen=True)
class Claim:
    """One claim of the study.

    Attributes:
        id: short stable name (``firing-stops-near-1.8``).
        section: the study's section heading it comes from.
        claim: the study's sentence, quoted or closely paraphrased.
        measures: what is measured and the thresholds of the verdicts.
        check: ``data -> (Verdict, measured)``, pure; ``measured`` says the numbers.
    """

    id: str
    section: str
    claim: str
    measures: str
    check: Check


def jump_mask(loss: np.ndarray, factor: float = 5.0) -> np.ndarray:
    """Which adjacent differences of ``loss`` are jumps: larger than ``factor`` times the
    median absolute adjacent difference (a curve of flat steps has a median near 0)."""
    d = np.abs(np.diff(np.asarray(loss, np.float64)))
    if d.size == 0:
        return np.zeros(0, bool)
    scale = float(np.median(d))
    floor = 1e-12 * max(float(np.max(np.abs(loss))), 1e-300)
    return d > factor * max(scale, floor)


def roughness(w: np.ndarray, loss: np.ndarray, scale: float, degree: int = 1) -> float:
    """RMS distance of ``loss`` from its least-squares polynomial of ``degree`` over ``w``
    (1: a line), as a fraction of ``scale`` (the loss range of the reference curve, e.g. the
    single-trial zoom): 0 for a straight line, about 0.29 for a sawtooth spanning ``scale``.
    A line's slope does not matter (a flat window is as straight as a steep one); degree 2
    also forgives the curve's large-scale bend, leaving the small-scale noise."""
    w, loss = np.asarray(w, np.float64), np.asarray(loss, np.float64)
    fit = np.polyval(np.polyfit(w, loss, degree), w)
    rms = float(np.sqrt(np.mean((loss - fit) ** 2)))
    if scale <= 0:
        return 0.0 if rms == 0 else float("inf")
    return rms / float(scale)


def low_loss_level(loss: np.ndarray, fraction: float = 0.1) -> float:
    """The top of the low-loss region: ``min + fraction * (max - min)`` of the curve."""
    loss = np.asarray(loss, np.float64)
    return float(loss.min() + fraction * np.ptp(loss))
