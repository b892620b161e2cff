"""What a network did and what it cost (``refsim analyze``).

* :mod:`.activity`: rates, silent and saturated neurons, activity over time, input density;
* synaptic operations (ACs, MACs) are counted during the run: :mod:`refsim.synops` (``.synops`` here
  re-exports it);
* :mod:`.energy`: energy presets and conventions (including Li et al.'s Table 5);
* :mod:`.metrics`: Dice (3-D and per slice), F1, Jaccard, pixel accuracy, mIoU, PSNR, SSIM, with a
  named empty-mask policy;
* :mod:`.curves`: readouts of the output membrane, Dice versus T and versus the cut-off;
* the measured SNN rates against the rate model of the same graph (Li Fig. 3) belong to conversion:
  :mod:`refsim.convert.compare` (``.conversion`` here re-exports it);
* :mod:`.report`: the report (JSON, and HTML with plots) and two runs side by side.

The core (simulator, backends, traces, io, convert, conformance) never imports this package; the
front ends (the CLI, the demo, segment, the benchmark) compose it with the core.
"""
