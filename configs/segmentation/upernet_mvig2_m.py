# UperNet (with an FCN auxiliary head on stage 3), MobileViGv2-M, ADE20K
# 512x512, 8x4 images, 40k iterations: the Semantic FPN recipe with mmseg's
# UperNet decoder. Not a setting of the paper.
_base_ = [
    'mmseg::_base_/models/upernet_r50.py',
    './_base_/ade20k_40k_mvig2.py',
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
        norm_eval=False,  # trained, synchronised (sync_bn), as Semantic FPN's
        drop_path_rate=0.1,
        drop_path_schedule='reference',
        init_cfg=dict(
            type='Pretrained',
            checkpoint='checkpoints/mobilevigv2_m_in1k.pth',
            prefix='backbone.',
            use_ema=True)),  # the reference starts from the EMA weights
    decode_head=dict(in_channels=[32, 64, 192, 384], num_classes=150),
    auxiliary_head=dict(in_channels=192, num_classes=150))
