# Semantic FPN with a MobileViGv2 backbone on ADE20K (the paper's setting).
# Variant configs set ``backbone.arch``, the checkpoint and
# ``neck.in_channels``.
_base_ = [
    'mmseg::_base_/models/fpn_r50.py',
    './ade20k_40k_mvig2.py',
]
crop_size = (512, 512)
model = dict(
    pretrained=None,
    data_preprocessor=dict(size=crop_size),
    backbone=dict(
        _delete_=True,
        type='MobileViGv2',
        arch='m',
        out_indices=(0, 1, 2, 3),
        # BatchNorm in training mode, synchronised across GPUs (sync_bn):
        # what the reference ran. Its backbone converts its norms to
        # SyncBatchNorm, and its train() freezes only nn.BatchNorm2d
        # modules, which SyncBatchNorm is not.
        norm_eval=False,
        drop_path_rate=0.1,
        drop_path_schedule='reference',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilevigv2_m_in1k.pth',
            prefix='backbone.',
            use_ema=True)),  # the reference starts from the EMA weights
    neck=dict(in_channels=[32, 64, 192, 384]),
    decode_head=dict(num_classes=150))
