"""ANN-to-SNN conversion (issue 11; so far: threshold balancing, :mod:`.balance`)."""
from .balance import threshold_balance

__all__ = ["threshold_balance"]
