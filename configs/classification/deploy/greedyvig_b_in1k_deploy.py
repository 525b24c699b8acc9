# Inference form of greedyvig_b_in1k.py: norms, layer scales and the
# positional encodings folded into convs, the two classifiers merged. Load a
# checkpoint written by tools/model_converters/reparameterize_model.py.
_base_ = ['../greedyvig_b_in1k.py']

model = dict(
    teacher=None, backbone=dict(deploy=True), head=dict(deploy=True))
