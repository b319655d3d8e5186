"""Regenerate tests/data/brian2_hh_reference.json: Brian2 spike times of HH neurons.

Needs the peers extra (``pip install -e '.[peers]'``; Brian2 2.9 needs numpy<2.4) and a C++
compiler. Usage: ``python scripts/make_brian2_reference.py [--out PATH]``.

The model is the one weakgrad implements (squid-axon parameters, -65 mV rest, gates at
steady state, exponential Euler, dt = 0.01 ms); a spike is an upward crossing of 0 mV
(threshold and refractoriness both ``v > 0*mV``). Currents: constants spanning silence,
the onset-spike regime, repetitive firing and the regime above ~62.5 uA/cm^2, plus steps
switched on and off inside the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

CONSTANT = [
    0.0,
    2.0,
    2.3,
    2.5,
    4.0,
    6.0,
    6.5,
    8.0,
    10.0,
    15.0,
    20.0,
    30.0,
    45.0,
    60.0,
    62.0,
    63.0,
    80.0,
    120.0,
    160.0,
    200.0,
]
STEPS = [
    (3.0, 20.0, 70.0),
    (7.0, 20.0, 70.0),
    (10.0, 10.0, 60.0),
    (25.0, 30.0, 80.0),
    (50.0, 20.0, 50.0),
    (70.0, 20.0, 70.0),
    (150.0, 40.0, 90.0),
]
DT_MS = 0.01
DURATION_MS = 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data/brian2_hh_reference.json"))
    args = parser.parse_args()

    import brian2 as b2
    from brian2 import cm2, ms, uA

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from peers import brian2_hh_group  # benchmarks/peers.py: not part of the package

    build = tempfile.mkdtemp(prefix="wg_brian2_")
    b2.set_device("cpp_standalone", directory=build)
    b2.prefs.devices.cpp_standalone.openmp_threads = 2
    b2.defaultclock.dt = DT_MS * ms

    cases = [("constant", a, 0.0, DURATION_MS) for a in CONSTANT]
    cases += [("step", a, on, off) for a, on, off in STEPS]
    n_neurons = len(cases)
    group = brian2_hh_group(
        n_neurons,
        """
        I = i_amp * int(t >= t_on) * int(t < t_off) : amp/meter**2
        i_amp : amp/meter**2 (constant)
        t_on : second (constant)
        t_off : second (constant)
        """,
    )
    group.i_amp = np.array([c[1] for c in cases]) * uA / cm2
    group.t_on = np.array([c[2] for c in cases]) * ms
    group.t_off = np.array([c[3] for c in cases]) * ms
    spikes = b2.SpikeMonitor(group, name="spikes")
    b2.run(DURATION_MS * ms)

    trains = spikes.spike_trains()
    out = {
        "generator": "scripts/make_brian2_reference.py",
        "brian2_version": b2.__version__,
        "numpy_version": np.__version__,
        "device": "cpp_standalone",
        "method": "exponential_euler",
        "dt_ms": DT_MS,
        "duration_ms": DURATION_MS,
        "threshold_mV": 0.0,
        "time_convention": "Brian2 records the clock time t at the start of the step whose "
        "update carried v above threshold",
        "cases": [
            {
                "kind": kind,
                "amplitude_uA_per_cm2": amp,
                "t_on_ms": on,
                "t_off_ms": off,
                "spike_times_ms": [round(float(t / ms), 6) for t in trains[i]],
            }
            for i, (kind, amp, on, off) in enumerate(cases)
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1) + "\n")
    os.replace(tmp, args.out)
    counts = [len(c["spike_times_ms"]) for c in out["cases"]]
    print(f"wrote {args.out}: {n_neurons} neurons, spike counts {counts}")


if __name__ == "__main__":
    main()
