"""refsim.config.RunConfig: each run setting resolved once (option, then the model's metadata, then the
default) and validated against the library's own lists; the CLI's choices are those lists."""
import numpy as np
import pytest

from refsim import cli, models
from refsim.config import DEFAULTS, RunConfig
from refsim.errors import UnknownNameError, ValidationError
from refsim.graph import Graph


def _graph(**meta):
    g = models.hippocampus_unet(in_shape=(1, 8, 8), channels=(2, 4), seed=0)
    return Graph([g[n] for n in g.order], name=g.name, metadata=dict(g.metadata, **meta))


def test_option_then_metadata_then_default():
    g = _graph(profile="spikingjelly", encoding="poisson-ternary", axis=2, readout="sigmoid")
    c = RunConfig.resolve(g)
    assert (c.profile, c.encoding, c.axis, c.readout) == ("spikingjelly", "poisson-ternary", 2, "sigmoid")
    assert c.normalize == "zero-mean"  # ternary input: zero-mean unless the model or the option says otherwise
    assert c.backend == DEFAULTS["backend"] == "event" and c.dtype == "float64" and c.seed == 0
    c = RunConfig.resolve(g, profile="norse", axis=0, normalize="unit", backend="reference")
    assert (c.profile, c.axis, c.normalize, c.backend) == ("norse", 0, "unit", "reference")
    assert RunConfig.resolve(None).profile == DEFAULTS["profile"] == "paper"


@pytest.mark.parametrize("meta,where", [({"axis": "x"}, "axis (model metadata)"), ({"axis": [0]}, "axis"),
                                        ({"readout": "softmax"}, "readout (model metadata)"),
                                        ({"normalize": 3}, "normalize (model metadata)"),
                                        ({"profile": "nope"}, "profile")])
def test_bad_metadata_is_named(meta, where):
    with pytest.raises((ValidationError, UnknownNameError)) as e:
        RunConfig.resolve(_graph(**meta))
    assert where in str(e.value)


def test_unknown_setting_and_bad_values():
    with pytest.raises(UnknownNameError):
        RunConfig.resolve(None, colour="red")
    with pytest.raises(ValidationError):
        RunConfig.resolve(None, threads=0)
    with pytest.raises(UnknownNameError):
        RunConfig.resolve(None, dtype="float16")


def test_cli_choices_are_the_library_lists():
    """A name added to a library list is accepted by the command line without editing cli.py."""
    from refsim.analysis.energy import PRESETS
    from refsim.encoding import ENCODERS
    p = cli._parser()
    sub = next(a for a in p._actions if a.dest == "command").choices
    an = {a.dest: a for a in sub["analyze"]._actions}
    assert tuple(an["energy"].choices) == tuple(PRESETS) and tuple(an["encoding"].choices) == tuple(ENCODERS)
    for cmd in sub.values():
        for a in cmd._actions:
            assert a.help, (cmd.prog, a.dest)
    assert all(sub[c].description for c in sub)


def test_analyze_reports_a_classifiers_accuracy(tmp_path):
    """analyze --label with class indices (B,): the accuracy of the argmax of the output membrane after
    every step, equal to a count from the run's own final output; with --ann, the ANN's accuracy."""
    import json
    from refsim import save_model
    from refsim.encoding import PoissonEncoder
    from refsim.graph import Input, Linear, Neuron, Output
    from refsim.simulator import Recorder, Simulator
    rng = np.random.default_rng(0)
    g = Graph([Input("x", (6,)), Linear("l1", ["x"], rng.standard_normal((8, 6)).astype(np.float32)),
               Neuron("n1", ["l1"]), Linear("l2", ["n1"], rng.standard_normal((3, 8)).astype(np.float32)),
               Output("out", ["l2"])], name="clf")
    save_model(g, tmp_path / "m.safetensors")
    x = rng.random((12, 6))
    labels = rng.integers(0, 3, 12)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", labels)
    assert cli.main(["analyze", str(tmp_path / "m.safetensors"), str(tmp_path / "x.npy"), "--label",
                     str(tmp_path / "y.npy"), "--T", "20", "--report", str(tmp_path / "r"), "--ann",
                     str(tmp_path / "m.safetensors"), "--no-progress"]) == 0
    acc = json.loads((tmp_path / "r" / "report.json").read_text())["accuracy"]
    final = Simulator(g, "paper", "event").run(x, 20, PoissonEncoder(seed=0), Recorder()).final_output["out"]
    want = float(np.mean(np.argmax(final, axis=1) == labels))
    assert acc["class_accuracy"] == want and acc["accuracy_vs_T"]["accuracy"][-1] == want
    ann_out = np.maximum(x @ g["l1"].weight.astype(np.float64).T, 0) @ g["l2"].weight.astype(np.float64).T
    assert acc["ann_class_accuracy"] == float(np.mean(np.argmax(ann_out, axis=1) == labels))
    np.save(tmp_path / "bad.npy", labels + 0.5)
    assert cli.main(["analyze", str(tmp_path / "m.safetensors"), str(tmp_path / "x.npy"), "--label",
                     str(tmp_path / "bad.npy"), "--T", "2", "--report", str(tmp_path / "r2"), "--no-progress"]) == 2
