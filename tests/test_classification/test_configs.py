"""The ImageNet configs: they build, load converted reference weights
strictly, give the reference logits, and so does their deploy form."""
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import load_checkpoint

from mvig2_mm.weights import convert_reference_state_dict
from tools.model_converters.reparameterize_model import main as reparameterize

CONFIGS = Path(__file__).resolve().parents[2] / 'configs' / 'classification'
VARIANTS = ['ti', 's', 'm', 'b']
WIDTHS = dict(ti=(256, 512), s=(256, 512), m=(384, 512), b=(512, 768))


def metafile_models():
    import yaml
    with open(CONFIGS / 'metafile.yml') as f:
        return {m['Name']: m for m in yaml.safe_load(f)['Models']}


def config_path(variant, deploy=False):
    if deploy:
        return CONFIGS / 'deploy' / f'mvig2_{variant}_in1k_deploy.py'
    return CONFIGS / f'mvig2_{variant}_in1k.py'


def build(variant, deploy=False):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(config_path(variant, deploy))
    return MODELS.build(cfg.model)


def logits(model, x):
    with torch.no_grad():
        return model(x, mode='tensor')


@pytest.mark.parametrize('variant', VARIANTS)
def test_config_recipe(variant):
    cfg = Config.fromfile(config_path(variant))
    assert cfg.custom_imports == dict(imports=['mvig2_mm'],
                                      allow_failed_imports=False)
    assert cfg.model.backbone == dict(type='MobileViGv2', arch=variant,
                                      drop_path_rate=0.1,
                                      drop_path_schedule='reference')
    assert (cfg.model.head.in_channels,
            cfg.model.head.emb_dims) == WIDTHS[variant]
    assert cfg.model.head.num_classes == 1000
    # lr = 2e-3 x batch / 1024 at the reference's 16 x 128 images
    assert cfg.optim_wrapper.optimizer.lr == pytest.approx(
        2e-3 * cfg.auto_scale_lr.base_batch_size / 1024)
    assert cfg.auto_scale_lr.base_batch_size == \
        16 * cfg.train_dataloader.batch_size
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    assert cfg.optim_wrapper.paramwise_cfg == dict(
        norm_decay_mult=0., bias_decay_mult=0., flat_decay_mult=0.)
    warmup, cosine = cfg.param_scheduler
    assert warmup.end == 20 and cosine.begin == 20
    assert cfg.optim_wrapper.optimizer.lr * warmup.start_factor == \
        pytest.approx(1e-6)
    assert cosine.eta_min == 1e-5 and cfg.train_cfg.max_epochs == 300
    assert cfg.train_dataloader.sampler.type == 'RepeatAugSampler'
    assert [h.type for h in cfg.custom_hooks] == ['EMAHook']
    assert cfg.custom_hooks[0].momentum == pytest.approx(1 - 0.99996)
    test_steps = {t['type']: t for t in cfg.test_dataloader.dataset.pipeline}
    assert test_steps['ResizeEdge']['scale'] == 248
    assert test_steps['ResizeEdge']['interpolation'] == 'bicubic'
    assert test_steps['CenterCrop']['crop_size'] == 224


@pytest.mark.parametrize('variant', VARIANTS)
def test_configs_build(variant):
    model = build(variant)
    assert type(model).__name__ == 'DistillImageClassifier'
    meta = metafile_models()[f'mvig2_{variant}_in1k']
    assert meta['Config'] == f'configs/classification/mvig2_{variant}_in1k.py'
    assert 'huggingface.co/SLDGroup/MobileViGv2' in meta['Weights']
    assert sum(p.numel() for p in model.parameters()) == \
        meta['Metadata']['Parameters']
    # distils when it trains; building it for evaluation builds no teacher
    assert model.with_teacher and model.teacher is None
    # the teacher is no part of the student's weights
    assert not any(k.startswith('teacher') for k in model.state_dict())
    deployed = build(variant, deploy=True)
    assert deployed.backbone.deploy and deployed.head.deploy
    assert not deployed.with_teacher
    assert not hasattr(deployed.head, 'fc_dist')


@pytest.mark.parametrize('variant', ['ti', 's', 'm'])
def test_reference_logits_and_deploy(reference, variant, tmp_path):
    converted = convert_reference_state_dict(reference.state_dict(variant))
    expected = reference.expected(variant)['logits']
    x, _ = reference.inputs()

    model = build(variant).eval()
    model.load_state_dict(converted, strict=True)
    torch.testing.assert_close(logits(model, x), expected,
                               atol=1e-4, rtol=1e-4)

    # the tool writes the deploy form; the deploy config loads it strictly.
    # Its input: an mmpretrain checkpoint, or (ti) a reference one
    src, dst = tmp_path / 'trained.pth', tmp_path / 'deploy.pth'
    torch.save(dict(meta=dict(epoch=300), state_dict=converted)
               if variant != 'ti' else
               dict(state_dict=reference.state_dict(variant), epoch=300), src)
    assert reparameterize([str(config_path(variant)), str(src),
                           str(dst)]) == 0
    deployed = build(variant, deploy=True).eval()
    load_checkpoint(deployed, str(dst), map_location='cpu', strict=True)
    torch.testing.assert_close(logits(deployed, x), expected,
                               atol=1e-4, rtol=1e-4)
    meta = torch.load(dst, weights_only=True)['meta']
    assert meta['deploy'] is True and meta['converted_from'] == 'trained.pth'


def test_b_deploy_equals_training_form(tmp_path):
    """No reference data for B: trained-like random weights instead."""
    model = build('b').eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                value.copy_(torch.rand_like(value) * 0.2 + 0.9
                            if 'running_var' in name or 'layer_scale' in name
                            else torch.randn_like(value) * 0.05)
    x = torch.randn(1, 3, 96, 128)
    expected = logits(model, x)
    src, dst = tmp_path / 'trained.pth', tmp_path / 'deploy.pth'
    torch.save(dict(state_dict=model.state_dict()), src)
    assert reparameterize([str(config_path('b')), str(src), str(dst)]) == 0
    deployed = build('b', deploy=True).eval()
    load_checkpoint(deployed, str(dst), map_location='cpu', strict=True)
    torch.testing.assert_close(logits(deployed, x), expected,
                               atol=1e-4, rtol=1e-4)


def test_reparameterize_errors(tmp_path, capsys):
    cfg = str(config_path('ti'))
    assert reparameterize([cfg, str(tmp_path / 'missing.pth'),
                           str(tmp_path / 'out.pth')]) == 1
    assert 'not found' in capsys.readouterr().err
    # a deploy-form checkpoint does not fit the training config
    deployed = build('ti', deploy=True)
    torch.save(dict(state_dict=deployed.state_dict()), tmp_path / 'dep.pth')
    assert reparameterize([cfg, str(tmp_path / 'dep.pth'),
                           str(tmp_path / 'out.pth')]) == 1
    assert 'does not fit' in capsys.readouterr().err
    assert not (tmp_path / 'out.pth').exists()


@pytest.mark.parametrize('variant', ['ti', 's', 'm', 'b'])
def test_imagenet_classifier_preset_matches_the_config(variant):
    from mvig2_mm.models import imagenet_classifier_cfg
    preset = imagenet_classifier_cfg(variant)
    cfg = Config.fromfile(str(config_path(variant))).model
    assert preset['backbone']['arch'] == cfg.backbone.arch
    for key in ('in_channels', 'emb_dims', 'num_classes'):
        assert preset['head'][key] == cfg.head[key]


# ------------------------------------------------------- MobileViG (v1)
def family_build(prefix, variant, deploy=False):
    """The model of ``configs/classification/{prefix}_{variant}_in1k.py``
    (or of its deploy config)."""
    from mmpretrain.registry import MODELS
    folder = CONFIGS / 'deploy' if deploy else CONFIGS
    suffix = '_deploy' if deploy else ''
    cfg = Config.fromfile(folder / f'{prefix}_{variant}_in1k{suffix}.py')
    return MODELS.build(cfg.model)


#: (config prefix, backbone, variant, head widths, the paper's top-1)
OTHER_FAMILIES = [
    ('mvig', 'MobileViG', 'ti', (256, 512), {75.7}),
    ('mvig', 'MobileViG', 's', (256, 512), {78.2}),
    ('mvig', 'MobileViG', 'm', (400, 768), {80.6}),
    ('mvig', 'MobileViG', 'b', (464, 768), {82.6}),
    # GreedyViG: the top-1 of S and B as its files' names give them; none
    # is sourced for M
    ('greedyvig', 'GreedyViG', 's', (384, 768), {81.1}),
    ('greedyvig', 'GreedyViG', 'm', (448, 768), set()),
    ('greedyvig', 'GreedyViG', 'b', (512, 768), {83.9}),
]


@pytest.mark.parametrize('prefix,backbone,variant,widths,top1',
                         OTHER_FAMILIES)
def test_configs_of_the_other_families(prefix, backbone, variant, widths,
                                       top1):
    """A few lines over the shared recipe (the reference training scripts
    of MobileViG and GreedyViG have MobileViGv2's defaults); params and the
    paper's top-1 as in the metafile."""
    from mvig2_mm.models import imagenet_classifier_cfg
    cfg = Config.fromfile(CONFIGS / f'{prefix}_{variant}_in1k.py')
    assert cfg.model.backbone == dict(type=backbone, arch=variant,
                                      drop_path_rate=0.1,
                                      drop_path_schedule='reference')
    assert (cfg.model.head.in_channels, cfg.model.head.emb_dims) == widths
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.05
    preset = imagenet_classifier_cfg(variant, backbone=backbone)
    assert preset['backbone'] == dict(type=backbone, arch=variant)
    assert preset['head']['emb_dims'] == cfg.model.head.emb_dims
    model = family_build(prefix, variant)
    meta = metafile_models()[f'{prefix}_{variant}_in1k']
    assert meta['In Collection'] == backbone
    if backbone == 'GreedyViG':  # the authors' folder of published files
        assert 'huggingface.co/SLDGroup/GreedyViG' in meta['Weights']
    assert sum(p.numel() for p in model.parameters()) == \
        meta['Metadata']['Parameters']
    assert {r['Metrics']['Top 1 Accuracy']
            for r in meta.get('Results', [])} == top1
    deployed = family_build(prefix, variant, deploy=True)
    assert deployed.backbone.deploy and not deployed.with_teacher


@pytest.mark.parametrize('prefix,family,variant', [
    ('mvig', 'mobilevig', 'ti'), ('mvig', 'mobilevig', 's'),
    ('mvig', 'mobilevig', 'm'), ('greedyvig', 'greedyvig', 's'),
    ('greedyvig', 'greedyvig', 'm')])
def test_reference_file_and_deploy_of_the_other_families(
        reference, prefix, family, variant, tmp_path):
    """A reference MobileViG or GreedyViG ImageNet file loads as it is into
    the config (converted on load; GreedyViG's 1-D layer scales and its
    inverted residuals' layer_scale_2 too) and, reparameterised, into the
    deploy config; both give the reference logits."""
    weights = reference.state_dict(variant, family)
    expected = reference.expected(variant, family)['logits']
    x, _ = reference.inputs()
    src, dst = tmp_path / f'{family}.pth', tmp_path / 'deploy.pth'
    torch.save(dict(state_dict=weights, epoch=300), src)
    model = family_build(prefix, variant).eval()
    load_checkpoint(model, str(src), map_location='cpu', strict=True)
    torch.testing.assert_close(logits(model, x), expected,
                               atol=1e-4, rtol=1e-4)
    config = str(CONFIGS / f'{prefix}_{variant}_in1k.py')
    assert reparameterize([config, str(src), str(dst)]) == 0
    deployed = family_build(prefix, variant, deploy=True).eval()
    load_checkpoint(deployed, str(dst), map_location='cpu', strict=True)
    torch.testing.assert_close(logits(deployed, x), expected,
                               atol=1e-4, rtol=1e-4)
