# Inference form of mvig_m_in1k.py: norms and layer scales folded into
# convs, the two classifiers merged. Load a checkpoint written by
# tools/model_converters/reparameterize_model.py.
_base_ = ['../mvig_m_in1k.py']

model = dict(
    teacher=None, backbone=dict(deploy=True), head=dict(deploy=True))
