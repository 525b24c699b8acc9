"""The default detection, segmentation and ImageNet configs train as the
reference runs did: the audit tables of configs/{detection,segmentation,
classification}/README.md, asserted on the built model, optimizer and
schedulers of every default config. The frozen-BN configs differ from them
in the backbone's BatchNorm only."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.model import convert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, PARAM_SCHEDULERS, DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

import mvig2_mm  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
LR = 2e-4

# config -> (family, weight decay, images per GPU, auto_scale_lr base batch)
DETECTION = {
    # the reference has M and B (detection/configs/mask_rcnn_mobilevigv2_
    # {m,b}_fpn_1x_coco.py:23/22); Ti and S follow M
    'maskrcnn_mvig2_ti': ('v2', 0.05, 1, 4),
    'maskrcnn_mvig2_s': ('v2', 0.05, 1, 4),
    'maskrcnn_mvig2_m': ('v2', 0.05, 1, 4),
    'maskrcnn_mvig2_b': ('v2', 1e-4, 1, 4),
    # MobileViG: 2 images per GPU (its _base_/datasets/coco_instance.py:32)
    # on 4 GPUs (its detection_results/det_mobilevig_m_62_8.log)
    'maskrcnn_mvig_m': ('v1', 0.05, 2, 8),
    'maskrcnn_mvig_b': ('v1', 1e-4, 2, 8),
    # GreedyViG: weight decay 0.05 for S and B (its detection/configs/
    # mask_rcnn_greedyvig_{s,b}_fpn_1x_coco.py:23), 1 image per GPU
    'maskrcnn_greedyvig_s': ('greedy', 0.05, 1, 4),
    'maskrcnn_greedyvig_b': ('greedy', 0.05, 1, 4),
}
FAMILY = dict(v1='MobileViG', v2='MobileViGv2', greedy='GreedyViG')
SEGMENTATION = {
    name: ('v1' if '_mvig_' in name else 'greedy' if 'greedy' in name
           else 'v2', 1e-4, 4, 32)
    for name in ('semfpn_mvig2_ti', 'semfpn_mvig2_s', 'semfpn_mvig2_m',
                 'semfpn_mvig2_b', 'semfpn_mvig_m', 'semfpn_mvig_b',
                 'semfpn_greedyvig_s', 'semfpn_greedyvig_b')}
CLASSIFICATION = [f'mvig2_{v}_in1k' for v in ('ti', 's', 'm', 'b')] + [
    f'mvig_{v}_in1k' for v in ('ti', 's', 'm', 'b')] + [
    f'greedyvig_{v}_in1k' for v in ('s', 'm', 'b')]


def config(task: str, name: str) -> Config:
    return Config.fromfile(str(REPO / 'configs' / task / f'{name}.py'))


def build(cfg: Config, **backbone):
    cfg = copy.deepcopy(cfg)
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.update(backbone)
    if 'teacher' in cfg.model:
        cfg.model.teacher = None
    with MODELS.switch_scope_and_registry(cfg.default_scope) as registry:
        return registry.build(cfg.model)


def reference_rates(backbone) -> list:
    """The reference code's per-block drop path rates for drop_path=0.1,
    written as the reference writes them: MobileViGv2
    (detection/mobilevigv2_backbone.py:349-366) advances its index after
    MGC blocks only; MobileViG (detection/mobilevig_backbone.py:240-266)
    and GreedyViG (detection/greedyvig_backbone.py:266-283) after every
    block."""
    arch = backbone.arch
    if type(backbone).__name__ == 'MobileViG':
        return torch.linspace(0, 0.1, sum(arch['blocks'])).tolist()
    blocks = list(zip(arch['ir_blocks'], arch['mgc_blocks']))
    if type(backbone).__name__ == 'GreedyViG':
        return torch.linspace(0, 0.1, sum(map(sum, blocks))).tolist()
    dpr = [x.item() for x in torch.linspace(0, 0.1, sum(map(sum, blocks)))]
    rates, dpr_idx = [], 0
    for local_stages, global_stages in blocks:
        rates += [dpr[dpr_idx]] * local_stages
        for _ in range(global_stages):
            rates.append(dpr[dpr_idx])
            dpr_idx += 1
    return rates


def block_rates(backbone) -> list:
    """The drop path rate each block of the built backbone uses."""
    return [getattr(block.drop_path, 'drop_prob', 0.)
            for stage in backbone.stages for block in stage
            if hasattr(block, 'drop_path')]


def assert_bn_trained_and_synchronised(cfg, model):
    """BatchNorm in training mode, synchronised in distributed runs."""
    assert cfg.sync_bn == 'torch'
    model.train()
    norms = [m for m in model.backbone.modules() if isinstance(m, _BatchNorm)]
    assert norms and all(m.training for m in norms)
    # what mmengine's Runner does with sync_bn='torch' when distributed
    synced = convert_sync_batchnorm(copy.deepcopy(model), 'torch').train()
    norms = [m for m in synced.backbone.modules()
             if isinstance(m, _BatchNorm)]
    assert norms and all(
        isinstance(m, torch.nn.SyncBatchNorm) and m.training for m in norms)


def optimizer_and_schedulers(cfg, model):
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
        schedulers = [PARAM_SCHEDULERS.build(
            dict(s, optimizer=wrapper.optimizer)) for s in copy.deepcopy(
                cfg.param_scheduler)]
    return wrapper.optimizer, schedulers


def lr_of(optimizer) -> float:
    return optimizer.param_groups[0]['lr']


@pytest.mark.parametrize('name', list(DETECTION))
def test_detection_recipe(name):
    family, weight_decay, batch, base_batch = DETECTION[name]
    cfg = config('detection', name)
    model = build(cfg)
    assert type(model.backbone).__name__ == FAMILY[family]
    assert_bn_trained_and_synchronised(cfg, model)
    assert block_rates(model.backbone) == pytest.approx(
        reference_rates(model.backbone))
    assert max(block_rates(model.backbone)) > 0
    assert cfg.get('efficient_conv_bn_eval') is None  # nothing is frozen

    optimizer, (warmup, steps) = optimizer_and_schedulers(cfg, model)
    assert type(optimizer).__name__ == 'AdamW'
    assert {g['weight_decay'] for g in optimizer.param_groups} == {
        weight_decay}
    assert cfg.optim_wrapper.get('clip_grad') is None
    # schedule_1x.py: linear warm-up over 500 iterations from 1e-6 x lr,
    # x0.1 after epochs 8 and 11 of 12
    assert lr_of(optimizer) == pytest.approx(LR * 1e-6)
    for _ in range(500):
        warmup.step()
    assert lr_of(optimizer) == pytest.approx(LR)
    assert warmup.end == 500 and not warmup.by_epoch
    assert steps.by_epoch and sorted(steps.milestones) == [8, 11]
    assert steps.gamma == 0.1
    assert cfg.train_cfg.max_epochs == 12 and cfg.train_cfg.val_interval == 1

    assert cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr.base_batch_size == base_batch
    assert not cfg.auto_scale_lr.enable
    init = cfg.model.backbone.init_cfg  # the ImageNet file's EMA weights
    assert init.type == 'Pretrained' and init.use_ema
    assert init.prefix == 'backbone.'


@pytest.mark.parametrize('name', list(SEGMENTATION))
def test_segmentation_recipe(name):
    family, weight_decay, batch, base_batch = SEGMENTATION[name]
    cfg = config('segmentation', name)
    model = build(cfg)
    assert_bn_trained_and_synchronised(cfg, model)
    assert block_rates(model.backbone) == pytest.approx(
        reference_rates(model.backbone))
    assert cfg.get('efficient_conv_bn_eval') is None

    # fpn_mobilevigv2_m_ade20k_40k.py:20-29: AdamW 1e-4 x gpu_multiples (2),
    # wd 1e-4, poly 0.9 to 0, 80k // 2 iterations, no warm-up
    optimizer, (poly, ) = optimizer_and_schedulers(cfg, model)
    assert type(optimizer).__name__ == 'AdamW'
    assert lr_of(optimizer) == pytest.approx(LR)
    assert {g['weight_decay'] for g in optimizer.param_groups} == {
        weight_decay}
    assert type(poly).__name__ == 'PolyLR'
    assert (poly.power, poly.eta_min, poly.end) == (0.9, 0.0, 40000)
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.train_cfg.val_interval == 4000
    assert cfg.default_hooks.checkpoint.interval == 4000
    # _base_/datasets/ade20k.py:35, 8 GPUs per the config's comment
    assert cfg.train_dataloader.batch_size == batch
    assert cfg.auto_scale_lr.base_batch_size == base_batch
    init = cfg.model.backbone.init_cfg
    assert init.type == 'Pretrained' and init.use_ema


@pytest.mark.parametrize('name', CLASSIFICATION)
def test_classification_recipe_where_it_differed(name):
    """The reference's per-block drop path rates and --sync-bn (main.py:
    170-172, 288-289); the rest of the recipe: test_configs.py."""
    cfg = config('classification', name)
    model = build(cfg)
    assert block_rates(model.backbone) == pytest.approx(
        reference_rates(model.backbone))
    assert_bn_trained_and_synchronised(cfg, model)


@pytest.mark.parametrize('task,name', [('detection', n) for n in DETECTION]
                         + [('segmentation', n) for n in SEGMENTATION])
def test_frozen_bn_config_differs_in_the_backbone_norms_only(task, name):
    default, frozen = config(task, name), config(task, f'{name}_frozen-bn')
    assert frozen.sync_bn is None
    model = build(frozen).train()
    norms = [m for m in model.backbone.modules() if isinstance(m, _BatchNorm)]
    assert norms and not any(m.training for m in norms)
    convs = [m for m in model.backbone.modules() if hasattr(
        m, 'efficient_conv_bn_eval_forward') and m.with_norm]
    assert convs and all(m.efficient_conv_bn_eval_forward for m in convs)
    assert block_rates(model.backbone) == block_rates(build(default).backbone)
    rest = {k: v for k, v in frozen.to_dict().items() if k != 'sync_bn'}
    expected = {k: v for k, v in default.to_dict().items() if k != 'sync_bn'}
    for key in ('norm_eval', 'efficient_conv_bn_eval'):
        rest['model']['backbone'].pop(key, None)
        expected['model']['backbone'].pop(key, None)
    assert rest == expected
