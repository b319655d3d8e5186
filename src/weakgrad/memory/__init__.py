"""Models of synaptic memory: the Benna-Fusi complex synapse (seed 004)."""

from weakgrad.memory.benna_fusi import (
    BennaFusiChain,
    MemorySimulation,
    capacity,
    exponential_capacity,
    fit_exponent,
    memory_noise,
    memory_signal,
    simulate,
    snr,
    trace_power,
)

__all__ = [
    "BennaFusiChain",
    "MemorySimulation",
    "capacity",
    "exponential_capacity",
    "fit_exponent",
    "memory_noise",
    "memory_signal",
    "simulate",
    "snr",
    "trace_power",
]
