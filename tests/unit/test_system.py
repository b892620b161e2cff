"""refsim._system: the machine queries every budget check reads."""
import os

import refsim._system as system


def test_memory_budget_is_half_the_physical_memory_and_at_least_a_gib(monkeypatch):
    assert system.physical_memory() > 0
    monkeypatch.setattr(system, "physical_memory", lambda: 64 << 30)
    assert system.memory_budget() == 32 << 30
    monkeypatch.setattr(system, "physical_memory", lambda: 1 << 20)
    assert system.memory_budget() == 1 << 30


def test_physical_memory_falls_back_when_the_system_does_not_say(monkeypatch):
    def fail(name):
        raise ValueError(name)
    monkeypatch.setattr(os, "sysconf", fail)
    assert system.physical_memory() == system.FALLBACK_PHYSICAL


def test_disk_free_asks_the_nearest_existing_folder(tmp_path):
    assert system.disk_free(tmp_path / "not" / "yet" / "there") == system.disk_free(tmp_path) > 0
