"""``weakgrad reproduce``: run the study's experiments into ``DIR/<name>/``, cached, and
write the report (:mod:`weakgrad.experiments.report`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from weakgrad.errors import ConfigError
from weakgrad.experiments.base import (
    RESULT_FILE,
    AbstractExperiment,
    AbstractResumableExperiment,
    all_experiments,
    claims_key,
)
from weakgrad.experiments.report import ExperimentRecord, write_report

__all__ = ["PRESETS", "ReproduceResult", "reproduce", "select", "RUN_FILE"]

PRESETS = ("quick", "full", "tiny")
# What the last run in DIR was asked for (preset, names): what --resume continues.
RUN_FILE = "reproduce.json"
ERROR_FILE = "error.txt"
# A resumable experiment's work in progress (AbstractResumableExperiment), removed once saved.
PARTIAL = "partial"


@dataclass(frozen=True)
class ReproduceResult:
    """What :func:`reproduce` did: per experiment its record, the report's files, the
    total wall time."""

    out: Path
    preset: str
    records: list[ExperimentRecord]
    report: Path
    claims: Path
    seconds: float

    def verdicts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.records:
            for c in r.claims:
                counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
        return counts

    def summary(self) -> str:
        ran = sum(r.status == "ran" for r in self.records)
        cached = sum(r.status == "cached" for r in self.records)
        failed = sum(r.status == "failed" for r in self.records)
        verdicts = ", ".join(f"{n} {v}" for v, n in self.verdicts().items())
        return (
            f"{len(self.records)} experiments ({ran} ran, {cached} cached, {failed} failed) "
            f"in {self.seconds:.1f} s; claims: {verdicts or 'none'}; report: {self.report}"
        )


def _slug(text: str) -> str:
    """A section's name for ``--only``: lower case, runs of anything but letters and digits
    as one dash ("Case 1: Short Timeframe" -> ``case-1-short-timeframe``)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def select(
    only: Sequence[str] | None, experiments: Sequence[AbstractExperiment] | None = None
) -> list[AbstractExperiment]:
    """The experiments named by ``only`` (experiment names, or section names with spaces as
    dashes, e.g. ``loss-landscape``), in the study's order; all of them for None. An
    unknown name raises :class:`~weakgrad.errors.ConfigError` listing the known ones."""
    experiments = list(all_experiments() if experiments is None else experiments)
    if only is None:
        return experiments
    names = {e.name for e in experiments}
    sections = {_slug(e.section) for e in experiments}
    unknown = [n for n in only if n not in names and n not in sections]
    if unknown or not only:
        known = ", ".join(e.name for e in experiments)
        raise ConfigError(
            f"--only: unknown experiment {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"choose from {known} (or a section: {', '.join(sorted(sections))})."
        )
    return [e for e in experiments if e.name in only or _slug(e.section) in only]


def _cached(folder: Path, exp: AbstractExperiment, settings: dict[str, Any]) -> dict | None:
    """The saved record of a finished run of ``exp`` at ``settings`` in ``folder``, or
    None (nothing there, an interrupted run, other settings, other claim checks)."""
    from weakgrad.io import check_manifest

    try:
        manifest = check_manifest(folder)
        record = json.loads((folder / RESULT_FILE).read_text())
    except (OSError, ValueError, KeyError):
        return None
    if RESULT_FILE not in manifest.get("files", {}):
        return None
    if (
        record.get("experiment") != exp.name
        or record.get("settings") != settings
        or record.get("claims_key") != claims_key(exp)
    ):
        return None
    return record


def _claims(exp: AbstractExperiment, saved: list[dict] | None, error: str | None) -> list[dict]:
    by_id = {c["id"]: c for c in saved or []}
    out = []
    for c in exp.claims:
        got = by_id.get(c.id, {})
        out.append(
            {
                "id": c.id,
                "section": c.section,
                "claim": c.claim,
                "measures": c.measures,
                "verdict": "failed" if error is not None else got.get("verdict", "failed"),
                "measured": error if error is not None else got.get("measured", "not measured"),
            }  # fmt: skip
        )
    return out


def _record(exp, settings, status, saved, seconds, error=None) -> ExperimentRecord:
    figures = [f"{exp.name}/{f}" for f in (saved or {}).get("figures", [])]
    return ExperimentRecord(
        name=exp.name, title=exp.title, section=exp.section, settings=settings, status=status,
        seconds=seconds, claims=_claims(exp, (saved or {}).get("claims"), error),
        figures=figures, error=error,
    )  # fmt: skip


def _run_one(
    exp: AbstractExperiment, settings, folder: Path, starting: Callable[[], None]
) -> ExperimentRecord:
    settings_dict = settings.as_dict()
    saved = _cached(folder, exp, settings_dict)
    if saved is not None:
        return _record(exp, settings_dict, "cached", saved, saved.get("seconds"))
    starting()
    start = time.perf_counter()
    try:
        if isinstance(exp, AbstractResumableExperiment):
            result = exp.run_resumable(settings, _scratch(folder, exp, settings_dict))
        else:
            result = exp.run(settings)
        seconds = time.perf_counter() - start
        saved = result.save(folder, seconds=seconds)
    except Exception as e:  # one experiment's failure is recorded; the others still run
        from weakgrad.io import write_text

        seconds = time.perf_counter() - start
        lines = str(e).strip().splitlines()
        error = f"{type(e).__name__}: {lines[0] if lines else ''}".rstrip(": ")
        write_text(folder / ERROR_FILE, "".join(traceback.format_exception(e)))
        return _record(exp, settings_dict, "failed", None, seconds, error)
    (folder / ERROR_FILE).unlink(missing_ok=True)
    shutil.rmtree(folder / PARTIAL, ignore_errors=True)
    return _record(exp, settings_dict, "ran", saved, seconds)


def _scratch(folder: Path, exp: AbstractExperiment, settings: dict[str, Any]) -> Path:
    """``folder/partial/``: the work in progress of ``exp`` at ``settings``, kept from a
    killed run at the same settings (its ``settings.json`` says which), emptied otherwise."""
    from weakgrad.io import write_json

    kept = folder / PARTIAL
    # The claims' fingerprint covers the experiment module's source (where its training
    # configs are built): work from other code is not continued either.
    stamp = {"experiment": exp.name, "settings": settings, "code": claims_key(exp)}
    try:
        same = json.loads((kept / "settings.json").read_text()) == stamp
    except (OSError, ValueError):
        same = False
    if not same:
        if kept.exists():  # a failure to remove it is the experiment's error, not hidden
            shutil.rmtree(kept)
        write_json(kept / "settings.json", stamp)
    return kept


def reproduce(
    out: str | os.PathLike,
    *,
    quick: bool = False,
    only: Sequence[str] | None = None,
    resume: bool = False,
    progress: Callable[[int, int, ExperimentRecord], None] | None = None,
    starting: Callable[[int, int, AbstractExperiment], None] | None = None,
    preset: str | None = None,
    experiments: Sequence[AbstractExperiment] | None = None,
) -> ReproduceResult:
    """Run the study's experiments (``only`` these names or sections; all by default) at
    the ``quick`` or full preset (``preset`` overrides: "quick", "full" or "tiny") into
    ``out/<name>/`` and write ``out/report.html`` and ``out/claims.json``.

    The report also shows the finished runs in ``out`` (at the same preset) of the
    experiments not chosen. An experiment whose folder holds a finished run
    (``manifest.json`` matching its files) at the same settings is not rerun. An
    experiment that raises is recorded as ``failed`` with its error line (traceback in
    ``out/<name>/error.txt``) and the others still run.
    The report is rewritten after every experiment, so a killed run leaves a readable one;
    a training experiment killed midway continues from its last evaluation's checkpoint
    (kept in ``out/<name>/partial/`` until it is saved) when run again at the same settings.
    ``resume=True`` continues the last run in ``out`` with its preset and names (from
    ``out/reproduce.json``). ``starting(i, n, experiment)`` is called before each
    experiment that runs (not one taken from the cache; i from 1), ``progress(i, n,
    record)`` after every experiment.
    ``out`` is locked for the run (:func:`weakgrad.io.folder_lock`)."""
    from weakgrad.io import folder_lock, write_json

    out = Path(out)
    if resume:
        try:
            last = json.loads((out / RUN_FILE).read_text())
            preset, only = last["preset"], last["only"]
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(
                f"--resume: {out} holds no earlier 'weakgrad reproduce' run to continue "
                f"({RUN_FILE} missing or unreadable); run without --resume."
            ) from None
    preset = preset or ("quick" if quick else "full")
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}.")
    everything = list(all_experiments() if experiments is None else experiments)
    chosen = select(only, everything)
    start = time.perf_counter()
    records: list[ExperimentRecord] = []
    quick_preset = preset == "quick"
    n = len(chosen)
    with folder_lock(out, what="weakgrad reproduce"):
        write_json(out / RUN_FILE, {"preset": preset, "only": None if only is None else list(only)})
        # Finished runs of the experiments not chosen (at this preset) stay in the report.
        earlier = {}
        for exp in everything:
            if exp not in chosen:
                settings = getattr(exp, preset)().as_dict()
                saved = _cached(out / exp.name, exp, settings)
                if saved is not None:
                    earlier[exp.name] = _record(
                        exp, settings, "earlier run", saved, saved.get("seconds")
                    )
        for i, exp in enumerate(chosen):
            settings = getattr(exp, preset)()
            begin = (lambda: None) if starting is None else partial(starting, i + 1, n, exp)
            records.append(_run_one(exp, settings, out / exp.name, begin))
            done = {r.name: r for r in records}
            shown = [done.get(e.name) or earlier.get(e.name) for e in everything]
            report, claims = write_report(out, [r for r in shown if r], quick=quick_preset)
            if progress is not None:
                progress(i + 1, n, records[-1])
    return ReproduceResult(out, preset, records, report, claims, time.perf_counter() - start)
