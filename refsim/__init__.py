"""refsim: a reference simulator for spiking neural networks converted from ANNs.

Exact integrate-and-fire, ternary and multi-threshold dynamics as the papers write them
(Yue et al. 2023; Li et al., Spiking-UNet), or as a named library does on request.
"""
from ._version import __version__
from .errors import (EncodingError, ModelFormatError, RefsimError, ShapeError, UnknownNameError,  # noqa: E402
                     ValidationError)
from .semantics import NeuronChoices, Profile, get_profile, list_profiles, register_profile  # noqa: E402
from .encoding import PoissonEncoder, ReplayEncoder, StaticEncoder, make_encoder  # noqa: E402
from .graph import Graph  # noqa: E402
from .io import load_model, save_model  # noqa: E402
from .simulator import Recorder, Simulator, Traces, simulate  # noqa: E402

__all__ = ["__version__", "RefsimError", "ValidationError", "UnknownNameError", "ModelFormatError", "ShapeError",
           "EncodingError", "NeuronChoices", "Profile", "get_profile", "list_profiles", "register_profile",
           "PoissonEncoder", "StaticEncoder", "ReplayEncoder", "make_encoder", "Graph", "load_model", "save_model",
           "Recorder", "Simulator", "Traces", "simulate"]
