"""mvig2_mm.apis.swap_backbone and tools/misc/swap_backbone.py on real mmdet
configs."""
import subprocess
import sys
from pathlib import Path

import pytest
from mmengine.config import Config
from mmengine.hub import get_config

from mvig2_mm.apis.swap_backbone import (IMAGENET_MEAN, IMAGENET_STD,
                                         stage_channels, swap_backbone)

REPO = Path(__file__).resolve().parents[2]

# mmdet config: (with masks, loss keys)
DETECTORS = {
    'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py':
    (False, ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox')),
    'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py':
    (True, ('loss_rpn_cls', 'loss_cls', 'loss_mask')),
    'cascade_rcnn/cascade-mask-rcnn_r50_fpn_1x_coco.py':
    (True, ('loss_rpn_cls', 's0.loss_cls', 's2.loss_mask')),
    'retinanet/retinanet_r50_fpn_1x_coco.py': (False,
                                               ('loss_cls', 'loss_bbox')),
    # caffe-style ResNet: BGR input with other mean/std
    'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py':
    (False, ('loss_cls', 'loss_bbox', 'loss_centerness')),
    'atss/atss_r50_fpn_1x_coco.py':
    (False, ('loss_cls', 'loss_bbox', 'loss_centerness')),
    'gfl/gfl_r50_fpn_1x_coco.py': (False, ('loss_cls', 'loss_bbox',
                                           'loss_dfl')),
    # one feature map (C5) into a neck whose in_channels is an int
    'yolof/yolof_r50-c5_8xb8-1x_coco.py': (False, ('loss_cls', 'loss_bbox')),
}


def mmdet_config(path: str) -> Config:
    return get_config(f'mmdet::{path}')


@pytest.mark.parametrize('path', sorted(DETECTORS))
def test_swapped_detector_builds_and_runs(path, det_smoke):
    with_mask, loss_keys = DETECTORS[path]
    cfg = swap_backbone(mmdet_config(path), arch='ti')
    det_smoke(cfg.model, with_mask, loss_keys)


@pytest.mark.parametrize('backbone,arch,path', [
    ('MobileViG', 'ti', 'faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'),
    ('MobileViG', 'ti', 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
    ('MobileViG', 'ti', 'retinanet/retinanet_r50_fpn_1x_coco.py'),
    ('MobileViG', 'ti', 'fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py'),
    ('GreedyViG', 's', 'mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
    ('GreedyViG', 's', 'retinanet/retinanet_r50_fpn_1x_coco.py')])
def test_other_families_swapped_into_mmdet_configs(backbone, arch, path,
                                                   det_smoke):
    """The predecessor family and GreedyViG drop into real mmdet configs as
    well."""
    with_mask, loss_keys = DETECTORS[path]
    cfg = swap_backbone(mmdet_config(path), arch=arch, backbone=backbone)
    assert cfg.model.backbone.type == backbone
    assert cfg.model.backbone.init_cfg.checkpoint == \
        f'checkpoints/{backbone.lower()}_{arch}_in1k.pth'
    det_smoke(cfg.model, with_mask, loss_keys)


def test_swap_sets_backbone_neck_and_imports():
    original = mmdet_config('retinanet/retinanet_r50_fpn_1x_coco.py')
    original.model.pretrained = 'torchvision://resnet50'
    before = original.to_dict()
    cfg = swap_backbone(original, arch='m')

    assert original.to_dict() == before  # the input is left alone
    assert cfg.model.backbone == dict(
        type='MobileViGv2', arch='m', out_indices=(0, 1, 2, 3),
        norm_eval=True, drop_path_rate=0.,
        init_cfg=dict(type='Pretrained',
                      checkpoint='checkpoints/mobilevigv2_m_in1k.pth',
                      prefix='backbone.', use_ema=True))
    assert 'pretrained' not in cfg.model
    neck = cfg.model.neck
    assert neck.in_channels == [32, 64, 192, 384]
    assert (neck.start_level, neck.add_extra_convs, neck.num_outs) == \
        (1, 'on_input', 5)
    assert cfg.custom_imports == dict(imports=['mvig2_mm'],
                                      allow_failed_imports=False)
    assert cfg.model.data_preprocessor.mean == IMAGENET_MEAN
    assert cfg.model.data_preprocessor.std == IMAGENET_STD
    assert cfg.model.data_preprocessor.bgr_to_rgb is True


def test_swap_options_and_existing_imports():
    cfg = mmdet_config('yolof/yolof_r50-c5_8xb8-1x_coco.py')
    cfg.custom_imports = dict(imports=['os.path'], allow_failed_imports=False)
    cfg = swap_backbone(cfg, arch='b', checkpoint=None)
    assert cfg.model.backbone.out_indices == (3, )
    assert 'init_cfg' not in cfg.model.backbone
    assert cfg.model.neck.in_channels == stage_channels('b')[3]
    assert cfg.custom_imports.imports == ['os.path', 'mvig2_mm']


def test_swap_errors():
    cfg = mmdet_config('faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py')
    with pytest.raises(ValueError, match='Unavailable arch'):
        swap_backbone(cfg, arch='xl')
    cfg.model.pop('neck')
    with pytest.raises(ValueError, match='neck'):
        swap_backbone(cfg)


def test_cli_writes_a_config_that_loads(tmp_path):
    out = tmp_path / 'configs' / 'atss_mvig2_s_1x.py'
    proc = subprocess.run(
        [sys.executable, str(REPO / 'tools' / 'misc' / 'swap_backbone.py'),
         'mmdet::atss/atss_r50_fpn_1x_coco.py', '--arch', 's', '-o',
         str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert str(out) in proc.stdout
    cfg = Config.fromfile(str(out))
    assert cfg.model.type == 'ATSS'
    assert cfg.model.backbone.type == 'MobileViGv2'
    assert cfg.model.backbone.arch == 's'
    assert cfg.model.neck.in_channels == stage_channels('s')
    assert cfg.custom_imports.imports == ['mvig2_mm']
    assert cfg.default_scope == 'mmdet'
