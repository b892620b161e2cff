"""ANN-to-SNN conversion (docs/semantics.md): threshold balancing (:mod:`.balance`), layer-wise and
connection-wise weight normalisation (:mod:`.normalize`), and :func:`convert_ann`, the whole
``refsim convert``: conversion, then the per-layer report (:mod:`.report`)."""
import numpy as np

from .balance import rescale, threshold_balance
from .neurons import CONVERSION_NEURONS, conversion_levels, with_neuron_model
from .normalize import METHODS, ann_activations, normalize
from .report import conversion_report
from ..errors import UnknownNameError, ValidationError
from ..graph import Graph

#: the conversion methods: threshold balancing, then the normalisations
CONVERSION_METHODS = ("balance",) + METHODS


def convert_ann(ann: Graph, x, method, config, T=200, scale=0.7, order="rathi", percentile=99.9, percentile_of="all",
                compat_offbyone=False, batch=16, min_correlation=0.9, slope_range=(0.8, 1.25), progress=False,
                echo=None, where="calibration inputs", neuron="if", levels=None):
    """Convert ANN graph ``ann`` (ReLU semantics at its Neuron nodes) on calibration inputs ``x``
    with ``method`` (:data:`CONVERSION_METHODS`), simulating with the run settings ``config``
    (:class:`refsim.config.RunConfig`; its profile and encoding are recorded in the model). The
    converted layers fire as ``neuron`` (:data:`CONVERSION_NEURONS`; ``levels`` for the
    multi-threshold neuron, :func:`with_neuron_model`), and the report simulates them so. Returns
    ``(snn, report)``; nothing is written. ``where`` names the inputs in errors."""
    if method not in CONVERSION_METHODS:
        raise UnknownNameError("conversion method", method, CONVERSION_METHODS)
    levels = conversion_levels(neuron, levels)  # refused here, before the simulations
    x = np.asarray(x)
    want = tuple(ann.shapes[ann.inputs[0]])
    if x.ndim < 2 or tuple(x.shape[1:]) != want or x.dtype.kind not in "biuf" or not np.all(np.isfinite(x)):
        raise ValidationError(where, f"a finite array (B, {', '.join(map(str, want))})",
                              f"shape {x.shape}, dtype {x.dtype}")
    if not 0 < percentile <= 100:
        raise ValidationError("percentile", "a percentile in (0, 100]", percentile)
    lo_hi = tuple(slope_range)
    if len(lo_hi) != 2 or not all(np.isfinite(lo_hi)) or not 0 <= lo_hi[0] < lo_hi[1]:
        raise ValidationError("slope range", "LO,HI with 0 <= LO < HI", slope_range)
    if not scale > 0:
        raise ValidationError("scale", "a positive factor", scale)
    meta = dict(ann.metadata, profile=config.profile, encoding=config.encoding)
    base = Graph([ann[n] for n in ann.order], name=ann.name, metadata=meta)
    if method == "balance":
        snn = threshold_balance(base, x, T=T, scale=scale, profile=config.profile, backend=config.backend,
                                encoder=config.encoder(), batch=batch, progress=progress, echo=echo, order=order)
    else:
        snn = normalize(base, x, method=method, percentile=percentile, percentile_of=percentile_of,
                        compat_offbyone=compat_offbyone)
    snn = with_neuron_model(snn, neuron, levels)
    rep = conversion_report(ann, snn, x, T=T, profile=config.profile, backend=config.backend, seed=config.seed,
                            batch=batch, percentile=percentile if method != "balance" else 99.9,
                            min_correlation=min_correlation, slope_range=lo_hi, progress=progress)
    return snn, rep


__all__ = ["threshold_balance", "rescale", "normalize", "ann_activations", "convert_ann", "with_neuron_model",
           "CONVERSION_METHODS", "CONVERSION_NEURONS"]
