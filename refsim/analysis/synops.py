"""Synaptic operations are counted during a run, so they live in the core: :mod:`refsim.synops`.
This name stays for code written against it."""
from ..synops import SYNAPTIC, SynopsCounter, dense_macs, fanout, spike_derived  # noqa: F401
