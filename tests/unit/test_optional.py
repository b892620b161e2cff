"""The optional-dependency helper says which extra to install."""
import pytest

from refsim._optional import MissingDependencyError, optional_import
from refsim.errors import RefsimError


def test_missing_package_names_the_extra():
    with pytest.raises(MissingDependencyError) as e:
        optional_import("nir_not_installed_pkg", "NIR import")
    assert isinstance(e.value, RefsimError) and "NIR import" in str(e.value) and "pip install" in str(e.value)


def test_known_extras_are_named(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "onnx", None)  # behaves as not installed
    with pytest.raises(MissingDependencyError, match=r"refsim\[onnx\]"):
        optional_import("onnx", "ONNX import")


def test_installed_package_is_returned():
    assert optional_import("numpy", "anything").__name__ == "numpy"


def test_core_imports_no_optional_dependency_at_module_level():
    import subprocess
    import sys
    code = ("import sys, refsim, refsim.cli, refsim.backends.event, refsim.conformance.check, refsim.io.nifti, "
            "refsim.io.torch, refsim.io.torch.record, refsim.conformance.record_torch, refsim.bench; "
            "print(sorted(m for m in ('torch', 'onnx', 'nir', 'dask', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
