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
# Yue's chain under its name (issue 20): Rathi-order balancing with ternary input, the scale sweep, fine-tuning
python validation/hippocampus/yue_chain.py --scales 0.3,0.4,0.5,0.7,1.0
python validation/hippocampus/finetune_snn.py --ternary --start yue_balanced --name yue_finetuned --lr 1e-4
python validation/hippocampus/ternary.py --subjects 6 --evaluate yue_balanced yue_finetuned yue_balanced_s0.3 yue_balanced_s0.4 yue_balanced_s0.5 yue_balanced_s1
# static against Poisson input for the connection-wise conversion (the same model file, encoding static)
python -c "from refsim import load_model, save_model; from refsim.graph import Graph; g = load_model('validation/hippocampus/out/snn_connectionwise.safetensors'); save_model(Graph([g[n] for n in g.order], name=g.name + '-static', metadata=dict(g.metadata, encoding='static')), 'validation/hippocampus/out/snn_connectionwise_static.safetensors')"
python validation/hippocampus/evaluate.py --models connectionwise connectionwise_static --subjects 6 --T 200 --results static_vs_poisson.json
# spread (issue 20): the two ANNs and Yue's chain on all 40 test subjects, three Poisson seeds; static input once
python validation/hippocampus/spread.py --models yue_balanced yue_finetuned connectionwise_static --seeds 0,1,2
python validation/hippocampus/spread.py --models yue_finetuned --seeds 0,1,2 --results spread_finetuned.json
python validation/hippocampus/spread.py --models yue_balanced_s0.5 connectionwise --anns --seeds 0,1,2 --results spread_scales.json
# fine-tuning from the scale-0.5 balancing (the scale that works without it)
python validation/hippocampus/finetune_snn.py --ternary --start yue_balanced_s0.5 --name yue_s05_finetuned --lr 1e-4
python validation/hippocampus/ternary.py --subjects 6 --evaluate yue_balanced_s0.5 yue_s05_finetuned
# Yue's chain: Dice against T up to 1000, and why it falls below the ANN, per layer
python validation/hippocampus/evaluate.py --models yue_balanced yue_balanced_s0.5 --subjects 6 --T 1000 --results yue_T1000.json
cp validation/hippocampus/out/yue_T1000.json validation/hippocampus/yue_T1000.json
python validation/hippocampus/yue_chain.py --diagnose yue_balanced yue_balanced_s0.5 yue_finetuned
# Yue's chain with binary input (Table 5 layout): Rathi-order balancing of the binary ANN, fine-tuning, 6 subjects
python validation/hippocampus/yue_chain.py --binary --scales 0.5,0.7
python validation/hippocampus/finetune_snn.py --start yue_binary_balanced --name yue_binary_finetuned --lr 1e-4
python validation/hippocampus/evaluate.py --models yue_binary_balanced yue_binary_finetuned yue_binary_balanced_s0.5 --subjects 6 --T 200 --results yue_binary.json
# spread of the remaining rows (resumable; see spread.json's commands for what each run covered)
python validation/hippocampus/convert_snn.py --T 200     # snn_converted, snn_layerwise (deterministic; connectionwise unchanged)
python validation/hippocampus/spread.py --models converted layerwise --anns --seeds 0,1,2 --results spread_binary.json
python validation/hippocampus/spread.py --models yue_balanced_s0.4 yue_balanced_s1 yue_balanced_s0.3 --anns --seeds 0,1,2 --results spread_scales.json
python validation/hippocampus/ternary.py --convert-only
python validation/hippocampus/spread.py --models ternary_connectionwise ternary_balanced --anns --seeds 0,1,2 --results spread_ternary.json
