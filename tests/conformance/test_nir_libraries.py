"""What snnTorch, Sinabs and Norse do with NIR's IF neuron (nir 1.0.4), measured by the tie probes.
Each assertion pins a finding reported in docs/conformance.md; a library release that changes it
fails here so the docs get updated. Skipped without torch, nir or the library."""
import pytest

pytest.importorskip("torch")
pytest.importorskip("nir")

from validation import nir_rows  # noqa: E402


def test_snntorch_imports_nir_if_as_a_leaky_neuron():
    pytest.importorskip("snntorch")
    row = nir_rows.import_row("snntorch")
    assert row["module"] == "Leaky" and any(p.startswith("beta=0.89") for p in row["parameters"])
    assert not row["reproduced_by_known_choices"] and not row["matches_nir"]  # a leak: no IF choice set fits


def test_snntorch_export_fails_with_nir_1_0_4():
    pytest.importorskip("snntorch")
    row = nir_rows.export_row("snntorch")
    assert "v_reset" in row.get("error", ""), row


def test_sinabs_imports_nir_if_with_its_own_semantics():
    pytest.importorskip("sinabs")
    row = nir_rows.import_row("sinabs")
    assert row["choices"] == {"comparison": ">=", "order": "integrate-then-fire", "reset": "subtract",
                              "spikes_per_step": "multi", "v_min": -1.0}
    assert row["profiles"] == ["sinabs-from-model"] and not row["matches_nir"]


def test_norse_imports_nir_if_with_reset_to_zero():
    pytest.importorskip("norse")
    row = nir_rows.import_row("norse")
    assert row["choices"]["reset"] == "zero" and row["choices"]["comparison"] == ">"
    # "nir-reset" (NIR 1.0.6's rule) has Norse's IF choices too; the file Norse read says subtract
    assert row["profiles"] == ["nir-reset", "norse"] and not row["matches_nir"]


@pytest.mark.parametrize("lib", ["sinabs", "norse"])
def test_export_writes_nir_if_whose_semantics_differ_from_the_neuron(lib):
    pytest.importorskip(lib)
    row = nir_rows.export_row(lib)
    assert row["node"] == "IF" and row["fields"] == {"r": [1.0], "v_threshold": [1.0]}
    assert not row["same_semantics"]  # >=/multi (Sinabs) or reset to zero (Norse) is not NIR 1.0.4's IF
