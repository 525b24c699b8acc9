# Inference form of mvig2_ti_in1k.py: norms, layer scales and the positional
# encoding folded into convs, the two classifiers merged. Load a checkpoint
# written by tools/model_converters/reparameterize_model.py.
_base_ = ['../mvig2_ti_in1k.py']

model = dict(
    teacher=None, backbone=dict(deploy=True), head=dict(deploy=True))
