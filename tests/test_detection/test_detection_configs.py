"""Every config in configs/detection: the recipe it states, and that it
builds and trains/predicts on small inputs."""
from pathlib import Path

import pytest
import torch
import yaml
from mmengine.config import Config

from mvig2_mm.models import GreedyViG, MobileViG, MobileViGv2

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / 'configs' / 'detection'

MASK_RCNN_LOSSES = ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox',
                    'loss_mask')
# name: (arch, weight decay, milestones, with masks, loss keys)
EXPECTED = {
    'maskrcnn_mvig2_ti.py':
    ('ti', 0.05, [8, 11], True, MASK_RCNN_LOSSES),
    'maskrcnn_mvig2_s.py':
    ('s', 0.05, [8, 11], True, MASK_RCNN_LOSSES),
    'maskrcnn_mvig2_m.py':
    ('m', 0.05, [8, 11], True, MASK_RCNN_LOSSES),
    'maskrcnn_mvig2_b.py':
    ('b', 1e-4, [8, 11], True, MASK_RCNN_LOSSES),
    # MobileViG (v1): its own recipe is the same
    'maskrcnn_mvig_m.py':
    ('m', 0.05, [8, 11], True, MASK_RCNN_LOSSES),
    'maskrcnn_mvig_b.py':
    ('b', 1e-4, [8, 11], True, MASK_RCNN_LOSSES),
    # GreedyViG: its own recipe has weight decay 0.05 for B too
    'maskrcnn_greedyvig_s.py':
    ('s', 0.05, [8, 11], True, MASK_RCNN_LOSSES),
    'maskrcnn_greedyvig_b.py':
    ('b', 0.05, [8, 11], True, MASK_RCNN_LOSSES),
    'retinanet_mvig2_m_1x.py':
    ('m', 0.05, [8, 11], False, ('loss_cls', 'loss_bbox')),
    # ms-3x: 12 epochs over the dataset repeated 3 times
    'cascade-maskrcnn_mvig2_m_ms-3x.py':
    ('m', 0.05, [9, 11], True,
     ('loss_rpn_cls', 'loss_rpn_bbox', 's0.loss_cls', 's1.loss_bbox',
      's2.loss_mask')),
}
# the same with the backbone's BatchNorm frozen (and Tune mode)
EXPECTED.update({name.replace('.py', '_frozen-bn.py'): value
                 for name, value in EXPECTED.items()
                 if name.startswith('maskrcnn_')})


def backbone_class(name: str) -> type:
    return MobileViG if '_mvig_' in name else GreedyViG if 'greedyvig' in \
        name else MobileViGv2


def load(name: str) -> Config:
    return Config.fromfile(str(CONFIG_DIR / name))


def test_the_expected_configs_are_there():
    assert sorted(p.name for p in CONFIG_DIR.glob('*.py')) == sorted(EXPECTED)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_config_states_the_recipe(name):
    arch, weight_decay, milestones, _, _ = EXPECTED[name]
    cfg = load(name)
    assert cfg.default_scope == 'mmdet'
    assert cfg.custom_imports == dict(imports=['mvig2_mm'],
                                      allow_failed_imports=False)
    assert cfg.get('efficient_conv_bn_eval') is None
    frozen = name.endswith('_frozen-bn.py')
    assert cfg.sync_bn == (None if frozen else 'torch')
    # _delete_ dropped every ResNet key
    family = backbone_class(name).__name__
    assert cfg.model.backbone == dict(
        type=family, arch=arch, out_indices=(0, 1, 2, 3),
        norm_eval=frozen, drop_path_rate=0.1,
        drop_path_schedule='reference',
        init_cfg=dict(type='Pretrained',
                      checkpoint=f'checkpoints/{family.lower()}_{arch}_'
                      f'in1k.pth', prefix='backbone.', use_ema=True),
        **(dict(efficient_conv_bn_eval=True) if frozen else {}))
    assert 'pretrained' not in cfg.model
    assert cfg.model.neck.in_channels == \
        backbone_class(name).arch_settings[arch]['channels']
    if name.startswith('retinanet'):
        assert cfg.model.neck.start_level == 1
        assert cfg.model.neck.add_extra_convs == 'on_input'

    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.optim_wrapper.optimizer == dict(
        type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=weight_decay)
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.by_epoch, warmup.begin, warmup.end) == \
        ('LinearLR', False, 0, 500)
    assert steps.type == 'MultiStepLR' and steps.milestones == milestones
    assert cfg.train_cfg.max_epochs == 12
    # per GPU and in all: 1 x 4 (MobileViGv2's reference), 2 x 4
    # (MobileViG's), mmdet's 2 x 8 (not in the paper)
    batch, total = (1, 4) if name.startswith(
        ('maskrcnn_mvig2', 'maskrcnn_greedyvig')) else (
        2, 8) if name.startswith('maskrcnn_mvig_') else (2, 16)
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=total)
    if name.startswith('maskrcnn'):
        assert warmup.start_factor == 1e-6
    resizes = [t for t in cfg.train_pipeline if 'Resize' in t.type]
    if 'ms-3x' in name:
        assert cfg.train_dataloader.dataset.type == 'RepeatDataset'
        assert cfg.train_dataloader.dataset.times == 3
        assert resizes[0].scale == [(1333, 640), (1333, 800)]
    else:
        assert resizes[0].scale == (1333, 800)


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_config_builds_and_runs(name, det_smoke):
    *_, with_mask, loss_keys = EXPECTED[name]
    det_smoke(load(name).model, with_mask, loss_keys)


def test_missing_pretrained_checkpoint_is_named(tmp_path, monkeypatch):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    monkeypatch.chdir(tmp_path)
    backbone = MODELS.build(
        load('maskrcnn_mvig2_ti.py').model.backbone)
    with pytest.raises(FileNotFoundError,
                       match='checkpoints/mobilevigv2_ti_in1k.pth'):
        backbone.init_weights()


def test_config_loads_imagenet_weights(tmp_path, monkeypatch):
    """init_cfg's prefix fits an mmpretrain classifier checkpoint."""
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    source = MobileViGv2('ti')
    for param in source.parameters():
        torch.nn.init.normal_(param)
    state_dict = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    state_dict['head.fc.weight'] = torch.zeros(1000, 512)
    (tmp_path / 'checkpoints').mkdir()
    torch.save({'state_dict': state_dict},
               tmp_path / 'checkpoints' / 'mobilevigv2_ti_in1k.pth')
    monkeypatch.chdir(tmp_path)

    model = MODELS.build(
        load('maskrcnn_mvig2_ti.py').model)
    model.init_weights()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value,
                                   msg=key)


def test_metafile():
    meta = yaml.safe_load((CONFIG_DIR / 'metafile.yml').read_text())
    models = {m['Name']: m for m in meta['Models']}
    assert {Path(m['Config']).name for m in models.values()} == set(EXPECTED)
    for model in models.values():
        assert (REPO / model['Config']).is_file()
        assert model['In Collection'] == backbone_class(
            model['Config']).__name__
        # the authors publish Mask R-CNN M and B (mmdet 2.28 files)
        published = model['Name'] in ('maskrcnn_mvig2_m', 'maskrcnn_mvig2_b')
        assert ('SLDGroup/MobileViGv2' in model.get('Weights', '')) \
            == published
        # and GreedyViG's authors S and B (their Detection/ folder)
        assert ('SLDGroup/GreedyViG/tree/main/Detection' in model.get(
            'Weights', '')) == (model['Name'] in ('maskrcnn_greedyvig_s',
                                                  'maskrcnn_greedyvig_b'))
        if model.get('Results'):
            assert 'paper-reported' in model['Metadata']['Results Source']
    reported = {name: {(r['Task'], k): v for r in m['Results']
                       for k, v in r['Metrics'].items()}
                for name, m in models.items() if m.get('Results')}
    assert reported == {
        'maskrcnn_mvig2_m': {
            ('Object Detection', 'box AP'): 42.5,
            ('Instance Segmentation', 'mask AP'): 38.8},
        'maskrcnn_mvig2_b': {
            ('Object Detection', 'box AP'): 43.0,
            ('Instance Segmentation', 'mask AP'): 39.6},
        'maskrcnn_mvig_m': {
            ('Object Detection', 'box AP'): 41.3,
            ('Instance Segmentation', 'mask AP'): 38.1},
        'maskrcnn_mvig_b': {
            ('Object Detection', 'box AP'): 42.0,
            ('Instance Segmentation', 'mask AP'): 38.9},
    }
