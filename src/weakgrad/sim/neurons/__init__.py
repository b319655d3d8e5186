"""Neuron models: one file each, one interface (:class:`AbstractNeuron`)."""

from weakgrad.sim.neurons._base import AbstractNeuron, NeuronOutput
from weakgrad.sim.neurons.escape_noise_lif import EscapeNoiseLIF
from weakgrad.sim.neurons.hodgkin_huxley import HHState, HodgkinHuxley
from weakgrad.sim.neurons.lif import LIF, lif_rate
from weakgrad.sim.neurons.rate import Linear, Perceptron, Sigmoid

__all__ = [
    "AbstractNeuron",
    "NeuronOutput",
    "HodgkinHuxley",
    "HHState",
    "LIF",
    "lif_rate",
    "EscapeNoiseLIF",
    "Perceptron",
    "Sigmoid",
    "Linear",
    "all_neurons",
]


def all_neurons() -> list[AbstractNeuron]:
    """One default instance of every neuron model (drives the contract tests)."""
    return [
        HodgkinHuxley(),
        HodgkinHuxley(noise_std=5.0, graded=False),
        LIF(),
        LIF(subtractive=True),
        EscapeNoiseLIF(),
        EscapeNoiseLIF(beta=2.0, subtractive=True),
        Perceptron(),
        Sigmoid(),
        Linear(),
    ]
