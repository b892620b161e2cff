"""Hypothesis settings for the property tests, in one place.

Profiles: ``dev`` (default, 200 examples) and ``ci`` (500 examples, derandomized so CI is
reproducible). Select with HYPOTHESIS_PROFILE=ci; CI=true selects ``ci``.
"""
import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("ci", max_examples=500, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
