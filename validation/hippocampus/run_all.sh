#!/usr/bin/env bash
# The three-stage pipeline of Yue et al. 2023 on MSD Task04 hippocampus, end to end, and RESULTS.md.
# Run from the repository root with torch==2.13.0 installed (about 95 minutes on 2 CPU cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
python validation/hippocampus/train_ann.py --epochs 12          # stage 1: the ANN
python validation/hippocampus/convert_snn.py --T 200             # stage 2: threshold balancing
python validation/hippocampus/finetune_snn.py                    # stage 3: surrogate-gradient fine-tuning
python validation/hippocampus/evaluate.py --models converted layerwise connectionwise finetuned --subjects 6 --T 200
python validation/hippocampus/train_ann.py --epochs 8 --normalize zero-mean --name ann_ternary   # Table 5
python validation/hippocampus/ternary.py --subjects 6            # ternary input: conversion and evaluation
python validation/hippocampus/finetune_snn.py --ternary --start ternary_connectionwise --name ternary_finetuned --lr 1e-4
python validation/hippocampus/ternary.py --subjects 6 --evaluate ternary_finetuned
python validation/hippocampus/make_results.py                    # plots, cross-check, the shipped model
python validation/hippocampus/segment_test.py                    # the shipped model on the 40 test subjects
