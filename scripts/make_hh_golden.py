"""Pin weakgrad's own Hodgkin-Huxley voltage trace in float64 (tests/data/hh_golden_float64.json).

A regression reference, not an external one (Brian2's spike times are that: see
make_brian2_reference.py): any change to the integrator, the rate functions or the order of
their arithmetic moves this trace and fails tests/test_golden.py at 1e-8 mV. Regenerate it
only for a change you mean, and say why in the commit.

    python scripts/make_hh_golden.py [--out tests/data/hh_golden_float64.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

CURRENTS = (0.0, 6.5, 10.0, 40.0)  # uA/cm^2: rest, near threshold, tonic, strong
DT_MS, STEPS, EVERY = 0.01, 3000, 25  # 30 ms, a sample every 0.25 ms


def golden_trace():
    import jax
    import jax.numpy as jnp

    import weakgrad as wg

    with jax.enable_x64(True):
        net = wg.Network.independent(
            len(CURRENTS), wg.HodgkinHuxley(), weight=jnp.asarray(CURRENTS, jnp.float64)
        )
        trace = wg.simulate(
            net, jnp.ones(1, jnp.float64), dt=DT_MS, steps=STEPS, record=wg.Record(voltages=True)
        )
        v = trace.voltages[0]
        assert v.dtype == jnp.float64
        return [[float(x) for x in row] for row in jax.device_get(v[EVERY - 1 :: EVERY])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("tests/data/hh_golden_float64.json"))
    args = parser.parse_args()
    data = {
        "what": "HodgkinHuxley() membrane potential (mV), float64, one neuron per current, "
        "constant current from rest, sampled every EVERY steps (after the step)",
        "currents_uA_cm2": list(CURRENTS),
        "dt_ms": DT_MS,
        "steps": STEPS,
        "every": EVERY,
        "voltage_mV": golden_trace(),
    }
    args.out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
