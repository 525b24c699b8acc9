# Mask R-CNN 1x, GreedyViG-B, with the backbone's BatchNorm frozen and
# Tune mode: less memory than maskrcnn_greedyvig_b.py, which trains
# BatchNorm as the reference runs did (configs/detection/README.md, "Which
# config").
_base_ = './maskrcnn_greedyvig_b.py'

model = dict(backbone=dict(norm_eval=True, efficient_conv_bn_eval=True))
sync_bn = None  # nothing of the model trains BatchNorm
