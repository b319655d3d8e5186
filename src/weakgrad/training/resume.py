"""What a resume may change, and the record of what each resume changed.

A resumed run must follow the trajectory it started on: ``--resume`` compares the resolved
configuration with the run's own ``config.json`` and refuses (a :class:`ConfigError`
listing ``section.key: old -> new``) every change except those in :data:`SAFE_ON_RESUME`,
which change when the run stops, evaluates or checkpoints, never a parameter:

- ``train.steps`` (more steps, or fewer but not below the checkpoint's step), except with
  ``optimizer.schedule = "cosine"``, whose learning rate at every step depends on it;
- ``train.eval_every`` and ``train.checkpoint_every``;
- ``train.test_size``: only the final test score, computed after the last step.

Everything else (task, data, model, estimator, optimiser, seed, batch size, eval size,
keep-best, EMA) is refused, including what only changes the evaluation (``eval_size``,
``eval_draws``, ``keep_best``): the rows before and after the resume would not compare.

Each resume appends one line to ``history.jsonl`` in the run folder: ``{"time",
"from_step", "changes": {"section.key": [old, new]}}`` (``{}`` when nothing changed).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from weakgrad.config import SECTIONS, ConfigError, TrainConfig, run_config_from_file
from weakgrad.io import write_text

__all__ = ["HISTORY", "SAFE_ON_RESUME", "append_history", "check_resume", "config_changes"]

SAFE_ON_RESUME = ("train.steps", "train.eval_every", "train.checkpoint_every", "train.test_size")
HISTORY = "history.jsonl"
_UNSET = "(unset)"


def config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(section.key, old, new)`` for every key that differs between two configs as
    :meth:`TrainConfig.to_dict` writes them (a key one side lacks is ``"(unset)"``)."""
    out = []
    for section in SECTIONS:
        a, b = old.get(section, {}), new.get(section, {})
        for key in [*a, *(k for k in b if k not in a)]:
            va, vb = a.get(key, _UNSET), b.get(key, _UNSET)
            if va != vb:
                out.append((f"{section}.{key}", va, vb))
    return out


def _safe(field: str, cfg: TrainConfig) -> bool:
    if field == "train.steps" and cfg.optimizer.schedule == "cosine":
        return False  # the cosine schedule decays over train.steps: every step would change
    return field in SAFE_ON_RESUME


def check_resume(saved: Path, cfg: TrainConfig) -> tuple[TrainConfig, list[tuple[str, Any, Any]]]:
    """(the run's own config, the allowed changes) of resuming the run whose config is
    ``saved`` with ``cfg``; a change that alters the trajectory is a :class:`ConfigError`
    listing every such field."""
    if not saved.is_file():
        raise ConfigError(
            f"{saved} is missing, so --resume cannot check that this configuration is the "
            "run's own; restore it, or train again into a new --out."
        )
    old_cfg = run_config_from_file(saved)
    changes = config_changes(old_cfg.to_dict(), cfg.to_dict())
    refused = [c for c in changes if not _safe(c[0], cfg)]
    if refused:
        listed = "; ".join(f"{f}: {a!r} -> {b!r}" for f, a, b in refused)
        cosine = any(f == "train.steps" for f, _, _ in refused)
        raise ConfigError(
            f"--resume would change how {saved.parent} trains ({listed}). A resumed run "
            f"follows the trajectory it started on: only {', '.join(SAFE_ON_RESUME)} may "
            "change"
            + (' (train.steps not with optimizer.schedule = "cosine")' if cosine else "")
            + ". Undo these changes, or train into a new --out."
        )
    return old_cfg, changes


def append_history(out: Path, start: int, changes: list[tuple[str, Any, Any]]) -> None:
    """Append one line for this resume to ``out/history.jsonl`` (the file is rewritten
    atomically with the line added: never half a line)."""
    import json

    path = Path(out) / HISTORY
    line = json.dumps({
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "from_step": start,
        "changes": {f: [a, b] for f, a, b in changes},
    })  # fmt: skip
    old = path.read_text() if path.is_file() else ""
    if old and not old.endswith("\n"):
        old += "\n"
    write_text(path, old + line + "\n")
