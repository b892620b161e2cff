"""What a network did and what it cost (``refsim analyze``).

* :mod:`.activity`: rates, silent and saturated neurons, activity over time, input density;
* :mod:`.synops`: exact synaptic operations (ACs, MACs) and the dense network's MACs;
* :mod:`.energy`: energy presets and conventions (including Li et al.'s Table 5);
* :mod:`.metrics`: Dice (3-D and per slice), F1, Jaccard, pixel accuracy, mIoU, PSNR, SSIM, with a
  named empty-mask policy;
* :mod:`.curves`: readouts of the output membrane, Dice versus T and versus the cut-off;
* :mod:`.conversion`: measured SNN rates against the rate model of the same graph (Li Fig. 3);
* :mod:`.report`: the report (JSON, and HTML with plots) and two runs side by side.
"""
