# Semantic FPN, GreedyViG-B, with the backbone's BatchNorm frozen and Tune
# mode: less memory than semfpn_greedyvig_b.py, which trains BatchNorm as
# the reference runs did (configs/segmentation/README.md, "Which config").
# The heads keep mmseg's SyncBN.
_base_ = './semfpn_greedyvig_b.py'

model = dict(backbone=dict(norm_eval=True, efficient_conv_bn_eval=True))
sync_bn = None
