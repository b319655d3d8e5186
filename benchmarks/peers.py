"""The Hodgkin-Huxley model of :class:`weakgrad.HodgkinHuxley` written for Brian2, shared by
``scripts/make_brian2_reference.py`` and ``benchmarks/simulate.py``.

Brian2 is an optional peer (``pip install -e '.[peers]'``), imported only when called.
"""

from __future__ import annotations

from typing import Any

__all__ = ["brian2_hh_group"]

_EQUATIONS = """
dv/dt = (I - gna*m**3*h*(v - ENa) - gk*n**4*(v - EK) - gl*(v - EL)) / Cm : volt
dm/dt = alpham*(1 - m) - betam*m : 1
dh/dt = alphah*(1 - h) - betah*h : 1
dn/dt = alphan*(1 - n) - betan*n : 1
alpham = 1/exprel(-(v + 40*mV)/(10*mV)) / ms : Hz
betam = 4*exp(-(v + 65*mV)/(18*mV)) / ms : Hz
alphah = 0.07*exp(-(v + 65*mV)/(20*mV)) / ms : Hz
betah = 1/(1 + exp(-(v + 35*mV)/(10*mV))) / ms : Hz
alphan = 0.1/exprel(-(v + 55*mV)/(10*mV)) / ms : Hz
betan = 0.125*exp(-(v + 65*mV)/(80*mV)) / ms : Hz
"""


def brian2_hh_group(n: int, current_equation: str, namespace: dict | None = None) -> Any:
    """A Brian2 ``NeuronGroup`` named ``hh`` of ``n`` HH neurons at rest (v = -65 mV, gates at
    steady state), exponential Euler, spikes = upward crossings of 0 mV.

    Args:
        current_equation: Brian2 equation lines defining ``I`` (uA/cm^2, as amp/meter**2)
            and any parameters it uses.
        namespace: extra names the current equation refers to.
    """
    import brian2 as b2
    from brian2 import cm2, mS, mV, uF

    ns = dict(
        Cm=1 * uF / cm2,
        gna=120 * mS / cm2,
        gk=36 * mS / cm2,
        gl=0.3 * mS / cm2,
        ENa=50 * mV,
        EK=-77 * mV,
        EL=-54.4 * mV,
    )
    ns.update(namespace or {})
    group = b2.NeuronGroup(
        n,
        _EQUATIONS + current_equation,
        method="exponential_euler",
        threshold="v > 0*mV",
        refractory="v > 0*mV",
        namespace=ns,
        name="hh",
    )
    group.v = -65 * mV
    group.m = "alpham / (alpham + betam)"
    group.h = "alphah / (alphah + betah)"
    group.n = "alphan / (alphan + betan)"
    return group
