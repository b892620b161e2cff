"""Conformance: ``refsim check`` (:mod:`.check`), ``refsim fingerprint`` (:mod:`.fingerprint`),
golden cases (:mod:`.golden`) and recording torch models (:mod:`.record_torch`). Trace files
live in :mod:`refsim.traces`; their loader is re-exported here for convenience."""
from ..traces import TRACE_FORMAT, TRACE_VERSION, compare_traces, load_traces

__all__ = ["TRACE_FORMAT", "TRACE_VERSION", "load_traces", "compare_traces"]
