"""Energy estimates from operation counts: ``E = MACs * E_MAC + ACs * E_AC``.

Presets (pJ per operation, 45 nm; Horowitz 2014, as used by Li et al. section 4.4.3 and most SNN
papers): ``fp32`` 4.6 / 0.9, ``fp16`` 1.5 / 0.4, ``int8`` 0.23 / 0.03. Any other pair by
:class:`EnergyModel`. These are estimates of arithmetic only (no memory traffic), as in the papers.

Conventions (:data:`CONVENTIONS`):

* ``"synops"`` (default): ACs are the synaptic operations refsim counted, one per event per
  synapse (:mod:`refsim.synops`); MACs those of analog inputs (direct coding's first layer).
* ``"li-table5"``: Li et al. eq. (13) and Table 5: ACs are the raw spike count of the network (the
  spikes of every spiking layer, not multiplied by their fan-out) and MACs the first layer's under
  direct coding. Offered to reproduce the paper's numbers; it undercounts synaptic work.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UnknownNameError, ValidationError


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation in picojoules."""

    name: str
    e_mac_pj: float
    e_ac_pj: float

    def __post_init__(self):
        for f in ("e_mac_pj", "e_ac_pj"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
                raise ValidationError(f"EnergyModel.{f}", "a non-negative number of picojoules", v)

    def joules(self, macs, acs) -> float:
        return (float(macs) * self.e_mac_pj + float(acs) * self.e_ac_pj) * 1e-12


PRESETS = {"fp32": EnergyModel("fp32", 4.6, 0.9), "fp16": EnergyModel("fp16", 1.5, 0.4),
           "int8": EnergyModel("int8", 0.23, 0.03)}
CONVENTIONS = ("synops", "li-table5")


def get_energy_model(name_or_model, e_mac_pj=None, e_ac_pj=None) -> EnergyModel:
    """A preset by name (or a model as is), with either energy replaced when given (a "custom" model)."""
    if isinstance(name_or_model, EnergyModel):
        em = name_or_model
    else:
        try:
            em = PRESETS[name_or_model]
        except (KeyError, TypeError):
            raise UnknownNameError("energy preset", name_or_model, PRESETS) from None
    if e_mac_pj is None and e_ac_pj is None:
        return em
    return EnergyModel("custom", em.e_mac_pj if e_mac_pj is None else e_mac_pj,
                       em.e_ac_pj if e_ac_pj is None else e_ac_pj)
