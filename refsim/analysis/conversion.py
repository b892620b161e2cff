"""The ANN-vs-SNN comparison belongs to conversion: :mod:`refsim.convert.compare`. This name stays
for code written against it."""
from ..convert.compare import compare_with_ann, conversion_quality, match_layers, rate_model  # noqa: F401
