"""Optional dependencies, imported lazily through one helper that says what to install (as
nibabel's ``optpkg``). The core never imports them at module level.

=============  ==========================================================  =====================
module         used for                                                    install
=============  ==========================================================  =====================
torch          exporting and recording torch models; benchmark peers       ``pip install torch==2.13.0``
                                                                           (a CPU build; see README)
onnx           ONNX import                                                 ``refsim[onnx]``
nir            NIR import and export                                       ``refsim[nir]``
dask           running folders and sweeps on a cluster                     ``refsim[dask]``
matplotlib     plots                                                       a core dependency
=============  ==========================================================  =====================
"""
from __future__ import annotations

import importlib

from .errors import RefsimError

#: module -> what to run to get it
INSTALL = {
    "torch": "pip install torch==2.13.0 (the CPU build; an unpinned torch pulls CUDA packages)",
    "onnx": 'pip install "refsim[onnx]"',
    "onnxruntime": 'pip install "refsim[onnx]"',
    "nir": 'pip install "refsim[nir]"',
    "h5py": 'pip install "refsim[nir]"',
    "dask": 'pip install "refsim[dask]"',
    "distributed": 'pip install "refsim[dask]"',
    "matplotlib": "pip install matplotlib",
    "safetensors": 'pip install "refsim[test]"',
}


class MissingDependencyError(RefsimError, ImportError):
    """An optional package a feature needs is not installed; the message says how to install it."""

    def __init__(self, module: str, purpose: str):
        self.module, self.purpose = module, purpose
        how = INSTALL.get(module.split(".")[0], f"pip install {module.split('.')[0]}")
        super().__init__(f"{purpose} needs the optional package {module!r}, which is not installed: {how}")


def optional_import(module: str, purpose: str):
    """Import ``module`` or raise :class:`MissingDependencyError` saying what ``purpose`` needs and how to
    install it. Errors raised *inside* an installed package's import are not masked."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.split(".")[0] != exc.name.split(".")[0] and not module.startswith(exc.name):
            raise  # the package is there but one of its own dependencies is missing: show the real error
        raise MissingDependencyError(module, purpose) from None
