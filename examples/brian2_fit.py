"""Fit a Brian2 network with a weak gradient: weakgrad trains a simulator it did not write.

Eight noisy leaky integrate-and-fire neurons (Brian2, numpy code generation) receive a mean
drive that grows along the population, ``mu_i = bias + gain * x_i`` (mV) with ``x_i`` evenly
spaced in [0, 1]; their firing rates over 300 ms should follow a target profile rising
from 5 to 60 Hz. The two parameters (``bias``, ``gain``, in units of 10 mV) start at
(1, 0.5), where the population is nearly silent. The loss is the mean squared rate error in
units of (10 Hz)^2: spike counts are integers, so the loss is a step function of the
parameters, and only a weak gradient (here weakgrad's regression sampling, with common
random numbers: every perturbation of one estimate sees the same noise seed) trains it.

Brian2 enters through :class:`weakgrad.objectives.base.HostObjective`: one simulation per
parameter vector, seeded by the row's seed, so the losses do not depend on which process
evaluates which row. The same training runs twice, serially and over a
``ProcessPoolExecutor`` of 2 workers; both reach the same parameters (asserted), and the
wall times are printed.

    pip install -e '.[brian2]'       # Brian2 2.9 needs numpy < 2.4
    python examples/brian2_fit.py    # about 40 s on 2 cores (both trainings)
    python examples/brian2_fit.py --steps 3   # a short check

Measured on the 2-core project machine (20 steps x 4 simulations, 2026-12-01): the loss at
the fitted parameters, averaged over 8 noise seeds not used in training, falls from 7.53 to
0.98 (87% lower; fit: bias 11.8 mV, gain 10.4 mV); the training takes 20.2 s serially and
10.9 s over 2 processes (1.85x), 38 s in all with start-up.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from concurrent.futures import Executor, ProcessPoolExecutor

import numpy as np

N_NEURONS = 8
DURATION_MS = 300.0
TARGET_HZ = np.linspace(5.0, 60.0, N_NEURONS)
SCALE_MV = 10.0  # one parameter unit
RATE_UNIT_HZ = 10.0  # loss in units of (10 Hz)^2
START = np.array([1.0, 0.5])  # bias 10 mV, gain 5 mV: below the 20 mV threshold


def rates_hz(bias_mv: float, gain_mv: float, seed: int) -> np.ndarray:
    """Firing rates (Hz) of the 8 LIF neurons for one parameter vector and noise seed.

    ``tau dv/dt = mu_i - v + sigma sqrt(tau) xi``, tau = 10 ms, sigma = 4 mV, threshold
    20 mV, reset 0 mV, refractory 2 ms, dt = 0.1 ms, Euler-Maruyama."""
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"  # no compiler needed; starts at once
    b2.start_scope()
    b2.seed(int(seed))
    b2.defaultclock.dt = 0.1 * b2.ms
    tau, sigma = 10 * b2.ms, 4 * b2.mV
    group = b2.NeuronGroup(
        N_NEURONS,
        "dv/dt = (mu - v) / tau + sigma * sqrt(2 / tau) * xi : volt (unless refractory)\n"
        "mu : volt (constant)",
        threshold="v > 20*mV", reset="v = 0*mV", refractory=2 * b2.ms, method="euler",
        namespace={"tau": tau, "sigma": sigma},
    )  # fmt: skip
    x = np.linspace(0.0, 1.0, N_NEURONS)
    group.mu = (bias_mv + gain_mv * x) * b2.mV
    monitor = b2.SpikeMonitor(group)
    b2.run(DURATION_MS * b2.ms)
    return np.asarray(monitor.count[:], float) / (DURATION_MS / 1000.0)


def rate_loss(thetas: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """HostObjective's callable: ``(S, 2)`` parameter vectors and ``(S,)`` seeds -> ``(S,)``
    losses, one Brian2 simulation per row (a module-level function: the process pool
    pickles it)."""
    out = []
    for theta, seed in zip(np.asarray(thetas, float), seeds, strict=True):
        r = rates_hz(SCALE_MV * theta[0], SCALE_MV * theta[1], int(seed))
        out.append(np.mean(((r - TARGET_HZ) / RATE_UNIT_HZ) ** 2))
    return np.asarray(out)


def fit(steps: int, samples: int, executor: Executor | None) -> tuple[np.ndarray, list[float]]:
    """Adam on the regression-sampling gradient; returns the parameters and the loss of
    each step (the mean loss of the step's perturbed simulations)."""
    import jax
    import jax.numpy as jnp
    import optax

    from weakgrad.estimators import Regression
    from weakgrad.objectives.base import HostObjective

    obj = HostObjective(rate_loss, takes_seed=True, executor=executor, chunks=None)
    est = Regression(sigma=0.1, samples=samples, common_noise=True)
    opt = optax.adam(0.1)
    params = jnp.asarray(START, jnp.float32)
    opt_state, est_state = opt.init(params), est.init(params)

    @jax.jit  # Brian2 runs inside, through jax.pure_callback
    def update(params, opt_state, est_state, key):
        g, est_state, info = est.estimate(obj, params, est_state, key=key)
        updates, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, est_state, info.loss

    losses = []
    for step in range(steps):
        key = jax.random.fold_in(jax.random.key(0), step)
        params, opt_state, est_state, loss = update(params, opt_state, est_state, key)
        losses.append(float(loss))
        print(f"  step {step + 1:3d}: loss {losses[-1]:7.3f}  bias {SCALE_MV * params[0]:5.1f} "
              f"mV  gain {SCALE_MV * params[1]:5.1f} mV", flush=True)  # fmt: skip
    return np.asarray(params), losses


def held_out_loss(theta: np.ndarray, seeds: range) -> float:
    """The loss at ``theta`` averaged over fresh noise seeds (none used in training)."""
    return float(np.mean(rate_loss(np.repeat(theta[None], len(seeds), 0), np.asarray(seeds))))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--samples", type=int, default=4, help="simulations per estimate")
    ap.add_argument("--workers", type=int, default=2, help="processes of the pool")
    args = ap.parse_args()
    try:
        import brian2  # noqa: F401
    except Exception as e:  # not installed, or (Brian2 2.9) imported with numpy >= 2.4
        print(f"skipped: Brian2 is not available ({type(e).__name__}: {e}); "
              "pip install -e '.[brian2]'")  # fmt: skip
        return 0

    print(f"serial: {args.steps} steps x {args.samples} Brian2 simulations")
    t0 = time.perf_counter()
    theta_serial, losses = fit(args.steps, args.samples, None)
    serial_s = time.perf_counter() - t0

    # Spawned workers: forking a process that runs JAX's threads can deadlock.
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        pool.submit(rate_loss, START[None], np.zeros(1, np.uint32)).result()  # warm workers
        print(f"pooled ({args.workers} processes):")
        t0 = time.perf_counter()
        theta_pool, losses_pool = fit(args.steps, args.samples, pool)
        pooled_s = time.perf_counter() - t0
    # Same seeds, rows evaluated independently: the same training, bit for bit.
    assert np.array_equal(theta_pool, theta_serial) and losses_pool == losses

    seeds = range(10_000, 10_008)
    before, after = held_out_loss(START, seeds), held_out_loss(theta_serial, seeds)
    print(f"\nfitted: bias {SCALE_MV * theta_serial[0]:.1f} mV, gain "
          f"{SCALE_MV * theta_serial[1]:.1f} mV")  # fmt: skip
    print(f"rates at the fit (Hz): {np.round(rates_hz(*(SCALE_MV * theta_serial), 10_000), 1)}")
    print(f"target rates (Hz):     {np.round(TARGET_HZ, 1)}")
    print(f"held-out loss (8 seeds, (10 Hz)^2): {before:.3f} -> {after:.3f} "
          f"({100 * (1 - after / before):.0f}% lower)")  # fmt: skip
    print(f"wall time: serial {serial_s:.1f} s, {args.workers} processes {pooled_s:.1f} s "
          f"({serial_s / pooled_s:.2f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
