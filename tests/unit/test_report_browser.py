"""refsim analyze end to end: the CLI writes report.json and report.html for the shipped demo model
and input; the HTML opens in headless Chromium (Debian's chromium package) with every image loaded
and no console error, and a screenshot of it is taken (left in the test's folder to look at)."""
import json
import shutil
import subprocess

import pytest

from refsim import cli
from refsim.data import DEMO_IMAGE, DEMO_LABEL, DEMO_MODEL

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    rc = cli.main(["analyze", DEMO_MODEL, DEMO_IMAGE, "--label", DEMO_LABEL, "--T", "20", "--backend", "event",
                   "--no-progress", "--report", str(out / "r"), "--against-profile", "spikingjelly"])
    assert rc == 0
    return out / "r"


def test_analyze_on_the_demo_writes_numbers(report):
    rep = json.loads((report / "report.json").read_text())
    assert rep["run"]["T"] == 20 and rep["run"]["batch"] == 8
    assert 0 <= rep["accuracy"]["dice"] <= 1 and rep["accuracy"]["label_voxels"] > 0
    assert rep["energy"]["acs"] == sum(v["acs"] for v in rep["synaptic_layers"].values())
    assert set(rep["comparison"]["rates"]) == set(rep["layers"])


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_report_html_renders_in_chromium(report, tmp_path):
    url = "file://" + str(report / "report.html")
    dom = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'p1'}", "--virtual-time-budget=5000",
                          "--enable-logging=stderr", "--v=0", "--dump-dom", url],
                         capture_output=True, text=True, timeout=120)
    n = (report / "report.html").read_text().count("<img ")
    assert f'data-images-loaded="{n}/{n}"' in dom.stdout, "not every image decoded"
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    shot = report / "screenshot.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'p2'}", "--window-size=1200,3000",
                    f"--screenshot={shot}", url], capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000  # a page with plots, not a blank one


def test_analyze_bad_label_exits_2(tmp_path, capsys):
    import numpy as np
    np.save(tmp_path / "lab.npy", np.zeros((3, 56, 48)))
    rc = cli.main(["analyze", DEMO_MODEL, DEMO_IMAGE, "--label", str(tmp_path / "lab.npy"), "--T", "2",
                   "--no-progress", "--report", str(tmp_path / "r")])
    assert rc == 2 and "lab.npy" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()  # nothing written for a bad input
