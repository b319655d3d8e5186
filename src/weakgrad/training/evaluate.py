"""Score a finished (or interrupted) MNIST run again from its folder, writing nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from weakgrad.config import ConfigError, config_from_dict, read_run_config
from weakgrad.training.checkpoint import load_checkpoint, non_finite_leaves
from weakgrad.training.loop import build, eval_key, evaluated, initial_state

__all__ = ["RunFileMissing", "evaluate"]


class RunFileMissing(ConfigError, FileNotFoundError):
    """A run folder lacks a file ``evaluate`` needs (a user error: exit 2 on the CLI)."""


def evaluate(
    out: str | os.PathLike, *, draws: int | None = None, best: bool = False
) -> dict[str, Any]:
    """Validation and test metrics of an MNIST run folder's ``checkpoint.npz`` (``best``:
    its ``best.npz``), as its ``config.json`` says, the parameter average included.
    ``draws`` overrides node perturbation's ``estimator.eval_draws`` (0: the noise-free
    network; N: class probabilities averaged over N draws of the training noise). Writes
    nothing, so a finished run can be scored again without retraining. Same numbers as the
    run itself reported for the same settings (same evaluation key)."""
    out = Path(out)
    path = out / ("best.npz" if best else "checkpoint.npz")
    for f in (out / "config.json", path):
        if not f.is_file():
            raise RunFileMissing(
                f"{f} does not exist: evaluate needs a run folder written by weakgrad train"
                + (" with train.keep_best = true." if f.name == "best.npz" else ".")
            )
    data = read_run_config(out / "config.json")
    if draws is not None:
        if draws < 0:
            raise ConfigError(f"draws = {draws} must be >= 0 (0: the noise-free network).")
        estimator = data.setdefault("estimator", {})
        if draws and estimator.get("name") != "node":
            raise ConfigError(
                f"estimator.eval_draws = {draws} averages predictions over the noise of node "
                f"perturbation; {out} trained with estimator {estimator.get('name')!r}, which "
                "has no noise: use draws 0 (the network itself)."
            )
        if draws:
            estimator["eval_draws"] = draws
        else:
            estimator.pop("eval_draws", None)
    cfg = config_from_dict(data)
    if cfg.task.name != "mnist":
        raise ConfigError(f"evaluate scores MNIST runs; {out} is a {cfg.task.name!r} run.")
    task, est, opt = build(cfg)
    ema = cfg.train.ema_decay
    template = initial_state(task.initial_params(), est, opt, ema)
    state, step, _ = load_checkpoint(path, template)
    bad = non_finite_leaves(state)
    if bad:
        raise ConfigError(
            f"{path} holds non-finite numbers (NaN or inf, arrays {bad[:5]}): the run "
            "diverged before it was saved, or the file was edited; there is nothing to score."
        )
    params = evaluated(state, step, ema)
    key = eval_key(cfg.train.seed)
    val_loss, val_acc = task.validate(params, key)
    result = {"run": str(out), "checkpoint": path.name, "step": step,
              "eval_draws": getattr(task, "draws", 0), "val_loss": val_loss,
              "val_accuracy": val_acc, "val_size": len(task.x_val)}  # fmt: skip
    result.update(task.score(params, key))
    return result
