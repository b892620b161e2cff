"""A pytest plugin for guarding a model in a user's CI: enable it in ``conftest.py`` with
``pytest_plugins = ["refsim.pytest_plugin"]`` and use the ``refsim_golden`` fixture::

    def test_model_unchanged(refsim_golden):
        refsim_golden("tests/golden")        # every case made by `refsim golden init` passes

The fixture is :func:`refsim.testing.assert_golden`; a failing case fails the test with the first
differing layer, step and neuron. ``--refsim-backend event`` verifies on the event backend too.
"""
from __future__ import annotations

import pytest

from .testing import assert_golden


def pytest_addoption(parser):
    parser.addoption("--refsim-backend", default="reference", choices=("reference", "event"),
                     help="refsim backend the refsim_golden fixture verifies with (default reference)")


@pytest.fixture
def refsim_golden(request):
    """``check(directory)``: assert that the golden cases in ``directory`` pass."""
    backend = request.config.getoption("--refsim-backend")
    return lambda directory: assert_golden(directory, backend=backend)
