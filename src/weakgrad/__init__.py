"""weakgrad: weak-gradient training and loss-landscape diagnostics for biophysical and
spiking neural networks, on JAX.

Layout (bottom to top): :mod:`weakgrad.sim` (neurons, synapses, networks, ``simulate``),
:mod:`weakgrad.objectives`, :mod:`weakgrad.estimators`, :mod:`weakgrad.analysis`,
:mod:`weakgrad.tasks`, :mod:`weakgrad.training`; :mod:`weakgrad.config` and
:mod:`weakgrad.cli` on top. The names below are loaded on first use, so that ``import
weakgrad`` (and ``weakgrad --help``) does not start JAX.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "neurons": "weakgrad.sim.neurons",
    "random": "weakgrad.sim.random",
    "synapses": "weakgrad.sim.synapses",
    "Inject": "weakgrad.sim.network",
    "Layer": "weakgrad.sim.network",
    "Network": "weakgrad.sim.network",
    "Record": "weakgrad.sim.network",
    "Trace": "weakgrad.sim.network",
    "SimulationError": "weakgrad.sim.network",
    "simulate": "weakgrad.sim.network",
    "AbstractNeuron": "weakgrad.sim.neurons",
    "HodgkinHuxley": "weakgrad.sim.neurons",
    "LIF": "weakgrad.sim.neurons",
    "EscapeNoiseLIF": "weakgrad.sim.neurons",
    "Perceptron": "weakgrad.sim.neurons",
    "Sigmoid": "weakgrad.sim.neurons",
    "Linear": "weakgrad.sim.neurons",
    "Exponential": "weakgrad.sim.synapses",
    "Instantaneous": "weakgrad.sim.synapses",
    "Objective": "weakgrad.objectives.base",
    "HostObjective": "weakgrad.objectives.base",
    "NetworkObjective": "weakgrad.objectives.network",
    "estimators": "weakgrad.estimators",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'weakgrad' has no attribute {name!r}")
    mod = importlib.import_module(module)
    value = mod if module.endswith("." + name) else getattr(mod, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
