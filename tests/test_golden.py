"""A pinned float64 Hodgkin-Huxley voltage trace (scripts/make_hh_golden.py): the integrator
gives the same numbers to 1e-8 mV, so a change of arithmetic is never silent."""

import importlib.util
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_hodgkin_huxley_trace_matches_the_pinned_float64_golden():
    data = json.loads((ROOT / "tests/data/hh_golden_float64.json").read_text())
    spec = importlib.util.spec_from_file_location(
        "make_hh_golden", ROOT / "scripts/make_hh_golden.py"
    )
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert data["currents_uA_cm2"] == list(script.CURRENTS) and data["steps"] == script.STEPS
    got = np.asarray(script.golden_trace())
    want = np.asarray(data["voltage_mV"])
    assert got.shape == want.shape == (script.STEPS // script.EVERY, len(script.CURRENTS))
    # The trace covers rest, subthreshold and spiking (else it would pin little).
    assert np.ptp(want[:, 0]) < 1.0 and want[:, 2].max() > 20.0
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-8)
