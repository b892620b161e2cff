"""Generate docs/conformance.md: what each library's IF neuron does, measured by running the tie
probes of `refsim fingerprint` through it (run from the repository root with torch and the
libraries installed: `python validation/conformance_matrix.py`)."""
import os
import platform
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402

from refsim.conformance import record_torch  # noqa: E402
from refsim.conformance.fingerprint import PROBES, fingerprint  # noqa: E402


def configs():
    from spikingjelly.activation_based import neuron
    import snntorch as snn
    import sinabs.layers as sl
    from sinabs.activation import SingleSpike
    import norse.torch as nt
    return {
        "SpikingJelly IFNode(v_reset=None)": lambda: neuron.IFNode(v_reset=None),
        "SpikingJelly IFNode() (v_reset=0)": lambda: neuron.IFNode(),
        "snnTorch Leaky(beta=1, reset_mechanism='subtract')": lambda: snn.Leaky(beta=1.0),
        "snnTorch Leaky(beta=1, reset_mechanism='zero')": lambda: snn.Leaky(beta=1.0, reset_mechanism="zero"),
        "Sinabs IAF()": lambda: sl.IAF(),
        "Sinabs IAF(min_v_mem=-1)": lambda: sl.IAF(min_v_mem=-1.0),
        "Sinabs IAF(spike_fn=SingleSpike)": lambda: sl.IAF(spike_fn=SingleSpike),
        "Norse IAFCell()": lambda: nt.IAFCell(),
    }


def step_fn(make):
    def run(x):  # (T, N) -> (T, N)
        tr = record_torch.record(torch.nn.Sequential(make()), x[:, None, :].astype(np.float32))
        return next(iter(tr.spikes.values()))[:, 0, :]
    return run


def findings_section():
    """Library behaviours that differ from the equations, each with its input and both traces
    (validation/library_findings.py; the conformance tests pin them)."""
    from validation.library_findings import FINDINGS
    fmt = lambda xs: " ".join(f"{x:g}" for x in xs)
    out = ["## Library behaviours that differ from the equations", ""]
    for key, fn in FINDINGS.items():
        f = fn()
        out += [f"### {f['what']}", "", " ".join((fn.__doc__ or "").split()), "",
                "| step | " + " | ".join(str(t) for t in range(len(f["input"]))) + " |",
                "|---|" + "---|" * len(f["input"]),
                "| input | " + " | ".join(f"{x:g}" for x in f["input"]) + " |",
                f"| {f['library']} spikes | " + " | ".join(str(x) for x in f["spikes"]) + " |",
                f"| {f['library']} membrane | " + " | ".join(f"{x:g}" for x in f["membrane"]) + " |",
                "| equations: spikes | " + " | ".join(str(x) for x in f["expected_spikes"]) + " |",
                "| equations: membrane | " + " | ".join(f"{x:g}" for x in f["expected_membrane"]) + " |", ""]
        if "pre_reset_membrane" in f:
            out[-1:-1] = ["| equations: pre-reset membrane | " + " | ".join(f"{x:g}" for x in f["pre_reset_membrane"]) + " |"]
        out.append(f"Differs from the equations: {'yes' if f['differs'] else 'no'} (input {fmt(f['input'][:1])} every step).")
        out.append("")
    return out


def nir_section():
    """NIR import and export of each library's IF neuron (validation/nir_rows.py)."""
    from validation import nir_rows
    fmt = lambda v: " or ".join(v) if isinstance(v, list) else str(v)
    out = ["## NIR import and export", "",
           "Import: a NIR graph Input -> Affine(1x1, weight 1) -> IF(r=1, v_threshold=1) -> Output is loaded by "
           "the library and the tie probes run through it (one probe per batch element). Export: a one-neuron model "
           "of the library's IF neuron is written to NIR. SpikingJelly 2.0 has no NIR support. "
           "Code: `validation/nir_rows.py`.", "",
           "NIR's `IF` in the installed nir package: " + ", ".join(f"{k} {v}" for k, v in nir_rows.NIR_IF_CHOICES.items())
           + " (the `paper` choices).", "",
           "| library | imports NIR IF as | parameters | comparison | order | reset | spikes/step | membrane floor "
           "| matching refsim profiles | as NIR says |", "|---|---|---|---|---|---|---|---|---|---|"]
    for lib in nir_rows.LIBRARIES:
        r = nir_rows.import_row(lib)
        c = r["choices"]
        if not r["reproduced_by_known_choices"]:
            cells = "no IF choice set reproduces the probes | | | | "
        else:
            cells = f"{fmt(c['comparison'])} | {fmt(c['order'])} | {fmt(c['reset'])} | {fmt(c['spikes_per_step'])} | {fmt(c['v_min'])}"
        out.append(f"| {lib} | {r['module']} | {', '.join(r['parameters'])} | {cells} | {', '.join(r['profiles']) or 'none'} "
                   f"| {'yes' if r['matches_nir'] else 'no'} |")
    out += ["", "| library | exports its IF neuron as | fields | the neuron's own choices | same semantics as NIR IF |",
            "|---|---|---|---|---|"]
    for lib in nir_rows.LIBRARIES:
        r = nir_rows.export_row(lib)
        if "error" in r:
            out.append(f"| {lib} | export fails: `{r['error']}` | | | no |")
        else:
            own = ", ".join(f"{k} {v}" for k, v in r["neuron_choices"].items())
            out.append(f"| {lib} | {r['node']} | {r['fields']} | {own} | {'yes' if r['same_semantics'] else 'no'} |")
    out += ["", "So a NIR file does not carry the spike timing of the network that wrote it: every library here "
            "reads and writes NIR's `IF` with its own neuron's semantics, and snnTorch reads it as a leaky neuron. "
            "Pinned by `tests/conformance/test_nir_libraries.py`.", ""]
    return out


def main():
    versions = {}
    for mod in ("torch", "spikingjelly", "snntorch", "sinabs", "norse", "nir", "nirtorch"):
        try:
            from importlib.metadata import version
            versions[mod] = version(mod)
        except Exception:
            versions[mod] = "?"
    rows = []
    for name, make in configs().items():
        rep = fingerprint(step_fn(make))
        c = rep["choices"]
        fmt = lambda v: " or ".join(v) if isinstance(v, list) else str(v)
        rows.append(f"| {name} | {fmt(c['comparison'])} | {fmt(c['order'])} | {fmt(c['reset'])} | {fmt(c['spikes_per_step'])} "
                    f"| {fmt(c['v_min'])} | {', '.join(rep['profiles']) or 'none'} |")
    lines = ["# What each library's IF neuron does (measured)", "",
             "Generated by `validation/conformance_matrix.py`: the tie probes of `refsim fingerprint` "
             "(threshold 1, inputs " + ", ".join(f"`{k}`" for k in PROBES) + ") run through each neuron, float32, "
             "single-step, via `refsim.io.torch` and `refsim.conformance.record_torch`; every combination of the choices of "
             "docs/semantics.md section 1 is simulated and the ones that reproduce all probes are kept.", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + f"; Python {platform.python_version()}.", "",
             "| neuron | comparison | order | reset | spikes/step | membrane floor | matching refsim profiles |",
             "|---|---|---|---|---|---|---|", *rows, "",
             "Whole conv networks (Conv2d, ConvTranspose2d, AvgPool2d, Linear) with each library's neuron match "
             "their profile with zero divergences in `tests/conformance/test_torch_libraries.py`.", "",
             *findings_section(), *nir_section(),
             "Not yet covered here: float32 rounding-tie statistics per library."]
    path = os.path.join(ROOT, "docs", "conformance.md")
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
