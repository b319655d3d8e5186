"""The report of ``weakgrad reproduce``: ``DIR/report.html`` (opens from disk, figures as
PNG files beside it in ``DIR/<experiment>/``) and ``DIR/claims.json``."""

from __future__ import annotations

import html
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weakgrad.experiments.claims import Verdict

__all__ = ["ExperimentRecord", "claim_rows", "write_report", "command_for"]


@dataclass(frozen=True)
class ExperimentRecord:
    """One experiment as the report shows it.

    Attributes:
        name, title, section: the experiment's.
        settings: the settings used (JSON types).
        status: "ran", "cached" or "failed".
        seconds: wall time of the run (of the cached run for "cached"); None if unknown.
        claims: per claim ``{id, section, claim, measures, verdict, measured}``.
        figures: PNG paths relative to the report's folder.
        error: the error line of a failed experiment.
    """

    name: str
    title: str
    section: str
    settings: dict[str, Any]
    status: str
    seconds: float | None
    claims: list[dict[str, Any]]
    figures: list[str] = field(default_factory=list)
    error: str | None = None


def command_for(name: str, out: str | os.PathLike, quick: bool) -> str:
    """The command that regenerates experiment ``name`` alone into ``out``."""
    return f"weakgrad reproduce{' --quick' if quick else ''} --only {name} --out {out}"


def claim_rows(records: Sequence[ExperimentRecord], out, quick: bool) -> list[dict[str, Any]]:
    """``claims.json``: one object per claim."""
    return [
        {
            "id": c["id"],
            "experiment": r.name,
            "section": c["section"],
            "claim": c["claim"],
            "measures": c["measures"],
            "measured": c["measured"],
            "verdict": c["verdict"],
            "figures": list(r.figures),
            "command": command_for(r.name, out, quick),
            "seconds": r.seconds,
        }  # fmt: skip
        for r in records
        for c in r.claims
    ]


_STYLE = """
body { font-family: sans-serif; max-width: 1000px; margin: 2em auto; line-height: 1.4; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 8px;
vertical-align: top; } th { background: #f0f0f0; } img { max-width: 100%; }
.reproduced { background: #d4f4d4; } .partly { background: #fff3c4; }
.not-reproduced { background: #f8d0d0; } .failed { background: #ddd; color: #900; }
.chip { display: inline-block; width: 0.8em; height: 0.8em; margin-left: 2px;
border: 1px solid #999; vertical-align: middle; } .summary td { padding: 2px 8px; }
code, pre { background: #f6f6f6; padding: 2px 4px; } footer { color: #555; font-size: 90%; }
"""


def _cls(verdict: str) -> str:
    return verdict.replace(" ", "-")


def _versions() -> tuple[str, str]:
    import weakgrad

    try:
        import jax

        jax_version = jax.__version__
    except ImportError:  # pragma: no cover - jax is a dependency
        jax_version = "not installed"
    return weakgrad.__version__, jax_version


def _summary(records: Sequence[ExperimentRecord]) -> list[str]:
    """The top of the report, one screen: verdict counts, then one row per section with each
    experiment's link and one coloured square per claim (its verdict as the tooltip)."""
    e = html.escape
    verdicts = [c["verdict"] for r in records for c in r.claims]
    counts = ", ".join(
        f"<span class='{_cls(v)}'>{verdicts.count(v)} {v}</span>"
        for v in (verdict.value for verdict in Verdict)
        if verdicts.count(v)
    )
    secs = sum(r.seconds or 0.0 for r in records)
    parts = [
        f"<p><b>{len(verdicts)} claims</b> from {len(records)} experiments: {counts}. "
        f"Computation: {secs / 60:.1f} min in all.</p>",
        "<table class='summary'><tr><th>section</th><th>experiments (a square per claim)</th></tr>",
    ]
    by_section: dict[str, list[ExperimentRecord]] = {}
    for r in records:
        by_section.setdefault(r.section, []).append(r)
    for section, recs in by_section.items():
        cells = []
        for r in recs:
            chips = "".join(
                f"<span class='chip {_cls(c['verdict'])}' title='{e(c['id'])}: "
                f"{e(c['verdict'])}'></span>"
                for c in r.claims
            )
            cells.append(f"<a href='#{e(r.name)}'>{e(r.name)}</a>{chips}")
        parts.append(f"<tr><td>{e(section)}</td><td>{' &middot; '.join(cells)}</td></tr>")
    parts.append("</table>")
    return parts


def write_report(
    out: str | os.PathLike, records: Sequence[ExperimentRecord], *, quick: bool
) -> tuple[Path, Path]:
    """Write ``out/report.html`` and ``out/claims.json`` (each atomically) for
    ``records`` in the study's order; returns both paths."""
    from weakgrad.io import write_json, write_text

    out = Path(out)
    e = html.escape
    rows = claim_rows(records, out, quick)
    wg_version, jax_version = _versions()
    seeds = sorted({r.settings.get("seed") for r in records if "seed" in r.settings})
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<title>weakgrad: reproducing 'Loss Landscapes Emerging from BNNs'</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Reproducing 'Loss Landscapes Emerging from BNNs' with weakgrad</h1>",
        f"<p>Preset: <b>{'quick' if quick else 'full'}</b>. Each claim is a sentence of the "
        "study, a measurement in weakgrad and a verdict: reproduced, partly, not reproduced, "
        "or failed (the experiment raised).</p>",
        "<h2>Summary</h2>",
        *_summary(records),
        "<h2>Claims</h2><table><tr><th>claim</th><th>experiment</th><th>verdict</th>"
        "<th>measured</th></tr>",
    ]
    for row in rows:
        parts.append(
            f"<tr><td>{e(row['claim'])}</td><td><a href='#{e(row['experiment'])}'>"
            f"{e(row['experiment'])}</a></td><td class='{_cls(row['verdict'])}'>"
            f"{e(row['verdict'])}</td><td>{e(row['measured'])}</td></tr>"
        )
    parts.append("</table>")
    section = None
    for r in records:
        if r.section != section:
            section = r.section
            parts.append(f"<h2>{e(section)}</h2>")
        parts.append(f"<h3 id='{e(r.name)}'>{e(r.title)} <small>({e(r.name)})</small></h3>")
        if r.error is not None:
            parts.append(f"<p class='failed'>The experiment failed: <code>{e(r.error)}</code></p>")
        for fig in r.figures:
            parts.append(f"<p><img src='{e(fig)}' alt='{e(fig)}'></p>")
        for c in r.claims:
            parts.append(
                f"<p><b>The study:</b> &ldquo;{e(c['claim'])}&rdquo;<br>"
                f"<b>Measured:</b> {e(c['measures'])}<br><b>Result:</b> {e(c['measured'])}"
                f"<br><b>Verdict:</b> <span class='{_cls(c['verdict'])}'>"
                f"{e(c['verdict'])}</span></p>"
            )
        parts.append(f"<p>Regenerate: <code>{e(command_for(r.name, out, quick))}</code></p>")
        settings = ", ".join(f"{k} = {v}" for k, v in r.settings.items())
        parts.append(f"<p>Settings: <code>{e(settings)}</code></p>")
    parts.append("<footer><hr>")
    parts.append(
        f"<p>weakgrad {e(wg_version)}, JAX {e(jax_version)}; seed "
        f"{e(', '.join(str(s) for s in seeds) or '-')}; machine: {e(platform.platform())}, "
        f"{e(platform.machine())}, {os.cpu_count()} cores, Python {e(platform.python_version())}"
        "</p><p>Wall time of the experiment's computation (figures and files excluded; a "
        "cached experiment shows its earlier run's). Experiments on the same descent curve "
        "sweep it once per run: all but the first leave the sweep out.</p>"
        "<table><tr><th>experiment</th><th>status</th><th>wall time (s)</th></tr>"
    )
    for r in records:
        secs = "-" if r.seconds is None else f"{r.seconds:.1f}"
        parts.append(f"<tr><td>{e(r.name)}</td><td>{e(r.status)}</td><td>{secs}</td></tr>")
    parts.append("</table></footer></body></html>\n")
    report = write_text(out / "report.html", "\n".join(parts))
    claims = write_json(out / "claims.json", rows)
    return report, claims
