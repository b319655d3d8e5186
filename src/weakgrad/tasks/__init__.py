"""Tasks: a network factory, its input and a loss, bound together.

Training tasks implement :class:`~weakgrad.tasks.base.AbstractTask` (MNIST:
:class:`~weakgrad.tasks.mnist_task.MnistTask`; spike trains:
:class:`~weakgrad.tasks.spike_train_task.SpikeTrainTask`; Yin-Yang:
:class:`~weakgrad.tasks.yinyang.YinYangTask`; latency-coded MNIST:
:class:`~weakgrad.tasks.latency_mnist.LatencyMnistTask`, both on
:class:`~weakgrad.tasks.spike_time_task.AbstractSpikeTimeTask`; a config's ``[task]`` builds one,
see :mod:`weakgrad.registry`). The turn-off tasks serve the loss landscapes.
"""

from weakgrad.tasks.base import AbstractTask
from weakgrad.tasks.complete_graph import CompleteGraphTurnOff
from weakgrad.tasks.latency_mnist import LatencyMnistTask
from weakgrad.tasks.single_neuron import SingleNeuronTurnOff
from weakgrad.tasks.yinyang import YinYangTask

__all__ = [
    "AbstractTask",
    "CompleteGraphTurnOff",
    "LatencyMnistTask",
    "SingleNeuronTurnOff",
    "YinYangTask",
]
