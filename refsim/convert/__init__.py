"""ANN-to-SNN conversion (SEMANTICS.md section 5): threshold balancing (:mod:`.balance`), layer-wise
and connection-wise weight normalisation (:mod:`.normalize`)."""
from .balance import threshold_balance
from .normalize import ann_activations, normalize

__all__ = ["threshold_balance", "normalize", "ann_activations"]
