"""Write validation/hippocampus/RESULTS.md (tables and plots) from out/*.json, cross-check the
fine-tuned torch SNN's recorded traces with refsim check (teacher-forced and free-running), and copy
the fine-tuned model to refsim/data/hippocampus_snn.safetensors. Run after evaluate.py."""
from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from refsim import load_model  # noqa: E402
from refsim.conformance.check import check, format_report  # noqa: E402
from refsim.traces import load_traces  # noqa: E402
from validation.hippocampus.common import OUT, ROOT  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def plots(res, ft_log):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [m for m in ("converted", "layerwise", "connectionwise", "finetuned") if m in res]
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in names:
        d = res[m]["dice_vs_T"]
        ax.plot([int(k) for k in d], list(d.values()), "o-", label=f"SNN {m}")
    ax.axhline(res["ann"]["dice_3d_mean"], color="k", ls="--", label="ANN")
    ax.set_xlabel("time steps T")
    ax.set_ylabel("mean 3-D Dice (test subjects)")
    ax.set_ylim(0, 1)
    ax.set_title("Dice vs T (Yue Fig. 6A layout)")
    ax.legend()
    fig.savefig(os.path.join(HERE, "dice_vs_T.png"), dpi=96, bbox_inches="tight")
    plt.close(fig)
    if "connectionwise" in res and "finetuned" in res:
        layers = list(res["connectionwise"]["rates"])
        fig, ax = plt.subplots(figsize=(9, 4))
        xs = np.arange(len(layers))
        ax.bar(xs - 0.2, [res["connectionwise"]["rates"][n] for n in layers], 0.4,
               label="converted (connection-wise, the fine-tuning's start)")
        ax.bar(xs + 0.2, [res["finetuned"]["rates"][n] for n in layers], 0.4, label="fine-tuned")
        ax.set_xticks(xs)
        ax.set_xticklabels(layers, rotation=45, ha="right")
        ax.set_ylabel("firing rate (spikes / neuron / step)")
        ax.set_title("Per-layer firing rates before and after fine-tuning (Yue Fig. 4 layout)")
        ax.legend()
        fig.savefig(os.path.join(HERE, "rates.png"), dpi=96, bbox_inches="tight")
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    for m in ["ann"] + names:
        d = res[m]["cutoff_sweep"]
        ax.plot([float(k) for k in d], list(d.values()), "o-", label=m)
    ax.set_xlabel("output cut-off")
    ax.set_ylabel("mean 3-D Dice")
    ax.set_title("Cut-off sweep (Yue Table 2 layout)")
    ax.legend()
    fig.savefig(os.path.join(HERE, "cutoff_sweep.png"), dpi=96, bbox_inches="tight")
    plt.close(fig)


def main():
    res = json.load(open(os.path.join(OUT, "results.json")))
    ft_log = json.load(open(os.path.join(OUT, "finetune_log.json"))) if os.path.exists(os.path.join(OUT, "finetune_log.json")) else []
    plots(res, ft_log)
    lines = []
    ck = {}
    tpath = os.path.join(OUT, "finetune_traces.npz")
    if os.path.exists(tpath):
        g = load_model(os.path.join(OUT, "snn_finetuned.safetensors"))
        tr = load_traces(tpath)
        for mode in ("teacher-forced", "free-running"):
            rep = check(g, tr, "paper", mode=mode)
            ck[mode] = rep
            lines.append(format_report(rep))
        shutil.copy(os.path.join(OUT, "snn_finetuned.safetensors"), os.path.join(ROOT, "refsim", "data", "hippocampus_snn.safetensors"))
    json.dump({k: {"conforms": v["conforms"], "ties": sum(r["ties"] for r in v["layers"]),
                   "divergences": sum(r["divergences"] for r in v["layers"]),
                   "decisions": sum(r["compared"] for r in v["layers"])} for k, v in ck.items()},
              open(os.path.join(OUT, "crosscheck.json"), "w"), indent=1)
    print("\n".join(lines))
    print("results and cross-check written; edit RESULTS.md's prose from out/*.json")


if __name__ == "__main__":
    main()
