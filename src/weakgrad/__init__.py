"""weakgrad: weak-gradient training and loss-landscape diagnostics for biophysical and
spiking neural networks, on JAX."""

from weakgrad import neurons, random, synapses
from weakgrad.network import Inject, Layer, Network, Record, SimulationError, Trace, simulate
from weakgrad.neurons import (
    LIF,
    AbstractNeuron,
    EscapeNoiseLIF,
    HodgkinHuxley,
    Linear,
    Perceptron,
    Sigmoid,
)
from weakgrad.synapses import Exponential, Instantaneous

__version__ = "0.1.0"

__all__ = [
    "neurons",
    "random",
    "synapses",
    "Inject",
    "Layer",
    "Network",
    "Record",
    "Trace",
    "SimulationError",
    "simulate",
    "AbstractNeuron",
    "HodgkinHuxley",
    "LIF",
    "EscapeNoiseLIF",
    "Perceptron",
    "Sigmoid",
    "Linear",
    "Exponential",
    "Instantaneous",
]
