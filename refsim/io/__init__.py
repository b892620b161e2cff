"""File formats: the native model file, NIfTI volumes."""
from .model import load_model, save_model

__all__ = ["load_model", "save_model"]
