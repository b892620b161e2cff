"""Settings for the whole test suite, in one place (collected whichever folder pytest is given).

Hypothesis profiles: ``dev`` (default, 200 examples) and ``ci`` (500 examples, derandomized so CI
is reproducible). Select with HYPOTHESIS_PROFILE=ci; CI=true selects ``ci``. No deadline: the
first example of a test may compile Numba kernels.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=500, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
