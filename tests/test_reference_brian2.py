"""Hodgkin-Huxley against Brian2 (reference data made by scripts/make_brian2_reference.py)."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import weakgrad as wg

REF = json.loads((Path(__file__).parent / "data" / "brian2_hh_reference.json").read_text())


def _inputs(dtype):
    dt, steps = REF["dt_ms"], round(REF["duration_ms"] / REF["dt_ms"])
    t = np.arange(steps) * dt
    cols = [
        c["amplitude_uA_per_cm2"] * ((t >= c["t_on_ms"] - 1e-9) & (t < c["t_off_ms"] - 1e-9))
        for c in REF["cases"]
    ]
    return jnp.asarray(np.stack(cols, axis=1), dtype), dt, steps


def _simulate(dtype):
    inputs, dt, steps = _inputs(dtype)
    n = inputs.shape[1]
    net = wg.Network((wg.Layer(jnp.eye(n, dtype=dtype), jnp.zeros(n, dtype), wg.HodgkinHuxley()),))
    trace = jax.jit(
        lambda x: wg.simulate(net, x, dt=dt, steps=steps, record=wg.Record(spikes=True))
    )(inputs)
    return trace


def test_reference_covers_all_regimes():
    counts = {
        c["amplitude_uA_per_cm2"]: len(c["spike_times_ms"])
        for c in REF["cases"]
        if c["kind"] == "constant"
    }
    assert counts[0.0] == 0 and counts[2.0] == 0  # silent
    assert counts[4.0] == 1  # onset spike only
    assert counts[30.0] >= 8  # repetitive
    assert counts[80.0] == 1 and counts[200.0] == 1  # oscillation peaks below 0 mV


def test_float64_spike_counts_and_times_match_brian2():
    with jax.enable_x64(True):
        trace = _simulate(jnp.float64)
        times = trace.spike_times(0)
        counts = np.asarray(trace.counts[0])
    for j, case in enumerate(REF["cases"]):
        ref = np.asarray(case["spike_times_ms"])
        assert counts[j] == len(ref), (case, times[j])
        assert len(times[j]) == len(ref)
        if len(ref):
            np.testing.assert_allclose(times[j], ref, atol=0.1, rtol=0, err_msg=str(case))


def test_float32_spike_counts_match_brian2():
    trace = _simulate(jnp.float32)
    counts = np.asarray(trace.counts[0])
    ref = np.asarray([len(c["spike_times_ms"]) for c in REF["cases"]])
    np.testing.assert_array_equal(counts, ref)
    assert trace.final_state[0].v.dtype == jnp.float32
