"""Make every golden case in this folder (run from the repository root: ``python golden/make_golden.py``).

Each case gets model.safetensors, input.npz, case.json and README.md from the definitions below,
then expected.npz from the float64 reference backend (``refsim golden regen``). Deterministic:
rerunning reproduces the same files.
"""
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from refsim import models, save_model  # noqa: E402
from refsim.data import demo_input  # noqa: E402
from refsim.conformance import golden  # noqa: E402
from refsim.graph import Concat, Graph, Input, Neuron, Output, Scale  # noqa: E402
from refsim.semantics import get_profile, list_profiles  # noqa: E402

MRI_NOTE = ("The input is a 16x16 crop (rows 20-35, columns 10-25 after padding to 56x48) of slices 12-13 of the "
            "shipped MSD Task04 hippocampus excerpt `refsim/data/hippocampus_001_x10-17.nii.gz`, normalised to "
            "[0, 1]. License of input.npz: CC BY-SA 4.0; attribution: Simpson et al. 2019 (arXiv:1902.09063), "
            "Antonelli et al. 2022 (Nature Communications 13, 4128). Changes: cropped and rescaled.")


def mri_crop(zero_mean=False):
    x = demo_input()[4:6, :, 20:36, 10:26]
    return 2 * x - 1 if zero_mean else x


def balanced(g, x, model=None, levels=None):
    """Thresholds from the ANN activation (99.9th percentile), as the demo model."""
    _, scales = models.ann_forward(g, x)
    nodes = []
    for name in g.order:
        n = g[name]
        if n.TYPE == "Neuron":
            n = Neuron(n.name, n.inputs, model or n.model, float(np.float32(scales[name])), levels=levels)
        nodes.append(n)
    return Graph(nodes, name=g.name, metadata=g.metadata)


def if_chain():
    return Graph([Input("in", (8,)), Neuron("if1", ["in"]), Scale("id", ["if1"], 1.0), Neuron("if2", ["id"]),
                  Output("out", ["if2"])], name="if-chain")


TIE_X = np.array([[1.0, 0.5, 0.25, 1 / 3, 2.0, 0.75, 0.1, 0.0]])


def cases():
    out = {}
    for p in list_profiles():
        prof = get_profile(p)
        out[f"if-ties-{p}"] = dict(
            graph=if_chain(), x=TIE_X, T=16, profile=p, encoder={"type": "static"},
            what=f"Two IF layers under profile `{p}` ({prof.description}) driven by constant tie inputs "
                 "1, 1/2, 1/4, 1/3, 2, 3/4, 0.1, 0 (threshold 1): the comparison, update order, reset, "
                 "spikes per step and membrane report of docs/semantics.md section 1, and the float64 answer at 1/3.")
    lv_in = np.array([[0.25, 0.5, 1.3, 3.75, 4.0, 0.1, 2.0, 1.0]]).reshape(1, 8, 1, 1)
    mt = Graph([Input("in", (8, 1, 1)), Neuron("mt_gt", ["in"], "multithreshold", 1.0),
                Neuron("mt_ge", ["in"], "multithreshold", 1.0, choices={"comparison": ">="}),
                Concat("cat", ["mt_gt", "mt_ge"]), Output("out", ["cat"])], name="multithreshold-levels")
    out["multithreshold-levels"] = dict(
        graph=mt, x=lv_in, T=12, profile="paper", encoder={"type": "static"},
        what="Multi-threshold neurons (levels 2, 1, 0.5, 0.25; Li et al. eqs. 4-6, greedy high to low) on inputs "
             "with exact dyadic ties (0.25, 0.5, 3.75, 4, 2, 1) and 1.3 (greedy 1.25, not parallel 1.75), with `>` "
             "(authors' code) and `>=` (a node override).")
    rng = np.random.default_rng(7)
    tern_x = rng.uniform(-1, 1, size=(2, 1, 8, 8))
    w1 = (rng.standard_normal((4, 1, 3, 3)) * 0.8).astype(np.float32)
    w2 = (rng.standard_normal((4, 4, 3, 3)) * 0.5).astype(np.float32)
    from refsim.graph import Conv2d
    tg = Graph([Input("in", (1, 8, 8)), Conv2d("c1", ["in"], w1, None, padding=1), Neuron("if1", ["c1"], "if", 0.75),
                Conv2d("c2", ["if1"], w2, None, padding=1), Neuron("if2", ["c2"], "if", 0.5), Output("out", ["if2"])],
               name="ternary-poisson")
    out["ternary-poisson"] = dict(
        graph=tg, x=tern_x, T=24, profile="paper", encoder={"type": "poisson", "seed": 11, "ternary": True, "comparison": "<="},
        what="Ternary Poisson input (Yue et al. 2023 section 3.3; Rathi's `r <= |x|`) into binary IF layers: per-sample "
             "seeded draws and signed input spikes.")
    x = mri_crop()
    base = models.hippocampus_unet(in_shape=(1, 16, 16), channels=(4, 8), seed=5, name="unet")
    out["unet-binary"] = dict(graph=balanced(base, x), x=x, T=16, profile="paper", encoder={"type": "poisson", "seed": 3},
                              what="Yue-style U-Net (average pooling as analog current, transposed convolution, "
                                   "concatenation, non-firing output) with binary IF neurons. " + MRI_NOTE)
    xz = mri_crop(zero_mean=True)
    out["unet-ternary"] = dict(graph=balanced(base, np.abs(xz), model="ternary"), x=xz, T=16, profile="paper",
                               encoder={"type": "poisson", "seed": 3, "ternary": True},
                               what="The same U-Net with ternary IF neurons (+1 at v >= theta, -1 at v <= -theta, "
                                    "signed soft reset) on zero-mean ternary Poisson input. " + MRI_NOTE)
    out["unet-multithreshold"] = dict(graph=balanced(base, x, model="multithreshold"), x=x, T=16, profile="spiking-unet",
                                      encoder={"type": "poisson", "seed": 3},
                                      what="The same U-Net with multi-threshold neurons (default levels, per-layer "
                                           "threshold scale) under the spiking-unet profile. " + MRI_NOTE)
    xv = np.random.default_rng(2).random((2, 3, 8, 8))
    v = models.vgg5(in_shape=(3, 8, 8), hidden=(16,), seed=4)
    out["vgg5-rathi"] = dict(graph=balanced(v, xv), x=xv, T=20, profile="rathi2020", encoder={"type": "poisson", "seed": 9},
                             what="Rathi et al. 2020 VGG5 shape (8x8 input, one hidden layer of 16) with fire-then-"
                                  "integrate order: one step of delay per spiking layer, nothing fires at t=0.")
    su = models.spiking_unet(fnum=4, depth=2, in_hw=(16, 16), seed=6)
    out["static-bias-spiking-unet"] = dict(
        graph=balanced(su, x, model="multithreshold", levels=(2.0, 1.0, 0.5, 0.25)), x=x, T=10, profile="spiking-unet",
        encoder={"type": "static"},
        what="Li et al.'s Spiking-UNet shape (2 stages, 4 channels) with static (direct) coding: the first convolution "
             "with its bias sees the analog image every step; biases added every step; neurons after pooling; "
             "3x3 stride-2 transposed convolutions. " + MRI_NOTE)
    out.update(leaky_cases())
    return out


def leaky_cases():
    """The leaky models, with a dyadic decay (beta 0.75, alpha 0.5) so every membrane is exact."""
    lif = Graph([Input("in", (8,)), Neuron("lif", ["in"], "lif", 1.0, beta=0.75), Output("out", ["lif"])],
                name="lif-ties")
    cuba = Graph([Input("in", (8,)), Neuron("cuba", ["in"], "cubalif", 1.0, beta=0.75, alpha=0.5, gain=1.0),
                  Output("out", ["cuba"])], name="cubalif-ties")
    return {
        "lif-ties-snntorch": dict(
            graph=lif, x=TIE_X, T=16, profile="snntorch", encoder={"type": "static"},
            what="A LIF layer (v = 0.75 v + I, threshold 1) under the snntorch profile: `>`, subtraction at the next "
                 "step (Leaky's reset_delay), the pre-reset membrane reported; constant tie inputs."),
        "lif-ties-norse": dict(
            graph=lif, x=TIE_X, T=16, profile="norse", encoder={"type": "static"},
            what="The same LIF layer under the norse profile (LIFBoxCell: `>`, reset to zero)."),
        "cubalif-ties-nir": dict(
            graph=cuba, x=TIE_X, T=16, profile="nir", encoder={"type": "static"},
            what="A CubaLIF layer (current i = 0.5 i + I, then v = 0.75 v + i, threshold 1) under the nir profile "
                 "(`>`, subtraction): NIR's CubaLIF as refsim discretises it (docs/import.md)."),
    }


def write_case(name, c):
    folder = os.path.join(HERE, name)
    os.makedirs(folder, exist_ok=True)
    save_model(c["graph"], os.path.join(folder, "model.safetensors"))
    np.savez(os.path.join(folder, "input.npz"), x=np.asarray(c["x"], dtype=np.float64))
    small = np.asarray(c["x"]).size <= 16  # neuron-level cases: every membrane; networks: spikes + output membrane
    spec = {"name": name, "profile": c["profile"], "T": c["T"], "encoder": c["encoder"],
            "record": {"spikes": True, "membranes": bool(small)}}
    with open(os.path.join(folder, "case.json"), "w") as fh:
        json.dump(spec, fh, indent=1, sort_keys=True)
    with open(os.path.join(folder, "README.md"), "w") as fh:
        fh.write(f"# {name}\n\n**Pins down:** {c['what']}\n\n"
                 f"**Run:** profile `{c['profile']}`, T={c['T']}, encoder `{json.dumps(c['encoder'])}`, batch "
                 f"{np.asarray(c['x']).shape[0]}; recorded: spikes of every layer, the output membrane every step"
                 f"{', membranes of every layer' if small else ''}.\n\n"
                 "**Pass criterion:** every recorded spike, count and membrane equal bit for bit in float64 "
                 "(`refsim golden verify`).\n\n**Provenance:** made by `golden/make_golden.py` (deterministic seeds); "
                 "expected.npz from the float64 reference backend.\n")


if __name__ == "__main__":
    for name, c in cases().items():
        write_case(name, c)
    golden.regen(HERE)
