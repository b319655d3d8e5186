"""Gradient-quality diagnostics: how well an estimator matches a reference gradient as the
number of samples and the perturbation size vary (study 000, "Real Application: MNIST",
figures "Comparison" and "FIT S").
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.flatten_util import ravel_pytree

from weakgrad.estimators import AbstractEstimator, Autodiff, Masked
from weakgrad.io import write_csv
from weakgrad.objectives.base import AbstractObjective

__all__ = ["GradCheck", "gradcheck", "gradient_error"]

EstimatorFactory = Callable[[int, float], AbstractEstimator]
COLUMNS = ("estimator", "samples", "sigma", "repeat", "rel_error", "cosine", "evals", "seconds")


def gradient_error(estimate: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Relative L2 error ``|g - g_ref| / |g_ref|`` and cosine similarity (NaN for a zero
    vector)."""
    g, r = np.asarray(estimate, np.float64), np.asarray(reference, np.float64)
    nr, ng = np.linalg.norm(r), np.linalg.norm(g)
    rel = float(np.linalg.norm(g - r) / nr) if nr > 0 else float("nan")
    cos = float(g @ r / (ng * nr)) if ng > 0 and nr > 0 else float("nan")
    return rel, cos


@dataclasses.dataclass(frozen=True)
class GradCheck:
    """Results of :func:`gradcheck`.

    Attributes:
        rows: one dict per estimate with the keys of ``COLUMNS``.
        reference: the reference gradient on the compared coordinates (flat).
        examples: per estimator, its estimate (flat, compared coordinates) at the largest
            sample count and the sigma with the smallest mean error there.
        indices: positions of the compared coordinates in the flattened parameters.
    """

    rows: list[dict[str, Any]]
    reference: np.ndarray
    examples: dict[str, np.ndarray]
    indices: np.ndarray

    def to_csv(self, path: str | os.PathLike) -> Path:
        return write_csv(path, COLUMNS, ([r[c] for c in COLUMNS] for r in self.rows))

    def summary(self) -> list[dict[str, Any]]:
        """Mean and standard error over repeats of each (estimator, samples, sigma)."""
        groups: dict[tuple, list[dict]] = {}
        for r in self.rows:
            groups.setdefault((r["estimator"], r["samples"], r["sigma"]), []).append(r)
        out = []
        for (name, s, sigma), rs in groups.items():
            row = {"estimator": name, "samples": s, "sigma": sigma, "repeats": len(rs)}
            for col in ("rel_error", "cosine"):
                v = np.asarray([r[col] for r in rs], float)
                row[col] = float(np.mean(v))
                row[col + "_sem"] = (
                    float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
                )
            row["evals"] = rs[0]["evals"]
            out.append(row)
        return out


@eqx.filter_jit
def _estimate(est: AbstractEstimator, objective: AbstractObjective, params: Any, key: Array) -> Any:
    grads, _, info = est.estimate(objective, params, est.init(params), key=key)
    return ravel_pytree(grads)[0], info.evals


def gradcheck(
    objective: AbstractObjective,
    params: Any,
    estimators: Mapping[str, EstimatorFactory],
    *,
    samples: Sequence[int],
    sigmas: Sequence[float],
    repeats: int,
    key: Array,
    reference: Any = None,
    mask: Any = None,
    progress: Callable[[int], None] | None = None,
) -> GradCheck:
    """Compare estimators with a reference gradient over a grid of samples and sigmas.

    Args:
        objective, params: what to differentiate, and where.
        estimators: name -> factory ``(samples, sigma) -> estimator`` (a factory may ignore
            either argument; the row still records the grid point).
        samples, sigmas: the grid.
        repeats: independent estimates per grid point (different keys), for error bars.
        key: PRNG key; repeat ``r`` uses the same key for every estimator (paired design).
        reference: the reference gradient (pytree of ``params``); default: autodiff, right
            only where the loss is smooth; otherwise pass a high-sample estimate.
        mask: optional pytree of bools: compare (and estimate) only these parameters, e.g.
            the output layer as in the study.
        progress: called with 1 after each estimate.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}.")
    if not samples or any(int(s) < 1 for s in samples):
        raise ValueError(f"samples must be a non-empty list of ints >= 1, got {list(samples)}.")
    if not sigmas or any(not float(s) > 0 for s in sigmas):
        raise ValueError(
            f"sigmas must be a non-empty list of positive numbers, got {list(sigmas)}."
        )
    k_ref, k_est = jax.random.split(key)
    if reference is None:
        # Compiled, as the estimates are: un-jitted, the gradient through a simulation's
        # scan is traced and compiled op by op on every call (seconds for a 10-step HH run).
        ref_flat = np.asarray(_estimate(Autodiff(), objective, params, k_ref)[0])
    else:
        ref_flat = np.asarray(ravel_pytree(reference)[0])
    if mask is None:
        idx = np.arange(ref_flat.size)
    else:
        flat_mask = np.asarray(
            ravel_pytree(
                jax.tree.map(
                    lambda m, p: jnp.broadcast_to(jnp.asarray(m, bool), jnp.shape(p)), mask, params
                )
            )[0]
        )
        idx = np.flatnonzero(flat_mask)
        if idx.size == 0:
            raise ValueError("gradcheck: the mask selects no parameter.")
    ref = ref_flat[idx]
    rows: list[dict[str, Any]] = []
    examples: dict[str, np.ndarray] = {}
    keys = jax.random.split(k_est, repeats)
    for name, make in estimators.items():
        best: dict[float, list[np.ndarray]] = {}
        for s in samples:
            for sigma in sigmas:
                est = make(int(s), float(sigma))
                if mask is not None:
                    est = Masked(est, mask)
                for r in range(repeats):
                    t0 = time.perf_counter()
                    g, evals = _estimate(est, objective, params, keys[r])
                    g = np.asarray(g)[idx]
                    seconds = time.perf_counter() - t0
                    rel, cos = gradient_error(g, ref)
                    rows.append(
                        {
                            "estimator": name,
                            "samples": int(s),
                            "sigma": float(sigma),
                            "repeat": r,
                            "rel_error": rel,
                            "cosine": cos,
                            "evals": int(evals),
                            "seconds": seconds,
                        }
                    )
                    if s == max(samples):
                        best.setdefault(float(sigma), []).append(g)
                    if progress is not None:
                        progress(1)
        errs = {sg: np.mean([gradient_error(g, ref)[0] for g in gs]) for sg, gs in best.items()}
        examples[name] = best[min(errs, key=lambda k: np.nan_to_num(errs[k], nan=np.inf))][0]
    return GradCheck(rows, ref, examples, idx)
