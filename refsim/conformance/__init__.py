"""Conformance: trace files and golden cases (issue 4, first part)."""
from .traces import TRACE_FORMAT, TRACE_VERSION, compare_traces, load_traces

__all__ = ["TRACE_FORMAT", "TRACE_VERSION", "load_traces", "compare_traces"]
