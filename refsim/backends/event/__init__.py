"""The event backend: clock-driven, with event-driven propagation (docs/architecture.md).

Each step's spikes are propagated by Numba kernels: row-segmented events in raster order,
stride-1 convolutions scattered into channels-last halo buffers, one fused pass per IF, ternary
or multi-threshold layer that updates, resets and emits the next events. Its parts:

* :mod:`.plan`: what runs fused, scattered or dense, and why (exactness from :mod:`refsim.exactness`);
* :mod:`.run`: per-run buffers, membranes and event arrays; carries the plan out each step;
* :mod:`.kernels`: one keyword wrapper per kernel, and the choice-to-flag translation.

In float64 its traces equal the reference backend's bit for bit, on any thread count; ``dtype =
"float32"`` keeps the fused path in float32 for speed and may differ near thresholds
(``docs/architecture.md``).
"""
from __future__ import annotations

import numpy as np

from ...kernels import threads as _threads
from ..base import Backend
from . import kernels as K
from .plan import halo_conv, plan as _plan
from .run import EventRun


class EventBackend(Backend):
    name = "event"
    DTYPES = ("float64", "float32")
    #: False until the first run in this process (when Numba loads or compiles the kernels)
    warm = False

    def __init__(self, graph, params, dtype="float64", threads=None):
        super().__init__(graph, params, dtype, threads)
        self.prepared = {}    # weighted node -> weights in the kernel's layout, float64
        for name in graph.order:
            node = graph[name]
            if node.TYPE == "Conv2d":
                self.prepared[name] = K.prepare_conv_s1(node.weight) if halo_conv(node) else K.prepare_conv(node.weight, node.groups)
            elif node.TYPE == "ConvTranspose2d":
                self.prepared[name] = K.prepare_conv_transpose(node.weight)
            elif node.TYPE == "Linear":
                self.prepared[name] = np.ascontiguousarray(node.weight.astype(np.float64).T)
        self._threads_ctx = None
        self.bands = 1

    def plan(self, encoder, recorder=None) -> dict:
        return _plan(self.graph, self.params, encoder, recorder)

    def start(self, batch, traces, plan):
        EventBackend.warm = True
        self._threads_ctx = _threads.using(self.threads)
        self.bands = self._threads_ctx.__enter__()
        return EventRun(self, batch, traces, plan)

    def release_threads(self):
        if self._threads_ctx is not None:
            ctx, self._threads_ctx = self._threads_ctx, None
            ctx.__exit__(None, None, None)
