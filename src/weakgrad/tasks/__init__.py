"""Tasks: a network factory, its input and a loss, bound together."""

from weakgrad.tasks.complete_graph import CompleteGraphTurnOff
from weakgrad.tasks.single_neuron import SingleNeuronTurnOff

__all__ = ["CompleteGraphTurnOff", "SingleNeuronTurnOff"]
