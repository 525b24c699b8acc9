"""The segmentation configs, and MobileViGv2 inside mmseg's own configs:
build, ``loss`` and ``predict`` on small inputs, test pipeline, metrics."""
import copy
import glob
import os.path as osp

import numpy as np
import pytest
import torch

pytest.importorskip('mmseg')
import mmcv  # noqa: E402
import mmseg  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dataset import Compose  # noqa: E402
from mmengine.model import revert_sync_batchnorm  # noqa: E402
from mmengine.structures import PixelData  # noqa: E402
from mmengine.utils import import_modules_from_strings  # noqa: E402
from mmseg.evaluation import IoUMetric  # noqa: E402
from mmseg.registry import MODELS, TRANSFORMS  # noqa: E402
from mmseg.structures import SegDataSample  # noqa: E402
from mmseg.utils import register_all_modules  # noqa: E402
from torch.nn.modules.batchnorm import _BatchNorm  # noqa: E402

from mvig2_mm.models import GreedyViG, MobileViG, MobileViGv2  # noqa: E402

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'segmentation')
CONFIGS = sorted(osp.basename(p)
                 for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))
MMSEG_CONFIGS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'configs')
ARCHS = {'semfpn_mvig2_ti.py': 'ti', 'semfpn_mvig2_s.py': 's',
         'semfpn_mvig2_m.py': 'm', 'semfpn_mvig2_b.py': 'b',
         'upernet_mvig2_m.py': 'm',
         # MobileViG (v1) with MobileViGv2's recipe
         'semfpn_mvig_m.py': 'm', 'semfpn_mvig_b.py': 'b',
         # GreedyViG with its own recipe, which is MobileViGv2's
         'semfpn_greedyvig_s.py': 's', 'semfpn_greedyvig_b.py': 'b'}
# the same with the backbone's BatchNorm frozen (and Tune mode)
ARCHS.update({name.replace('.py', '_frozen-bn.py'): arch
              for name, arch in ARCHS.items() if name.startswith('semfpn')})
H, W = 64, 96

register_all_modules(init_default_scope=False)


@pytest.fixture(autouse=True)
def _mmseg_scope():
    """Every test here builds in mmseg's scope."""
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')


def backbone_class(name):
    return MobileViG if '_mvig_' in name else GreedyViG if 'greedyvig' in \
        name else MobileViGv2


def load(name):
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def build_segmentor(model_cfg, size=(H, W)):
    """Build on CPU: SyncBN (multi-GPU training) becomes BN, and the
    training batch is padded to ``size`` instead of the 512x512 crop."""
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg.data_preprocessor.size = size
    return revert_sync_batchnorm(MODELS.build(model_cfg))


def make_batch(num_classes, ori_shapes=((H, W), (H, W)), seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for ori_shape in ori_shapes:
        inputs.append(torch.randint(0, 256, (3, H, W), generator=gen,
                                    dtype=torch.uint8))
        gt = torch.randint(0, num_classes, (1, H, W), generator=gen)
        gt[:, :4] = 255  # some ignored pixels
        samples.append(SegDataSample(
            gt_sem_seg=PixelData(data=gt),
            metainfo=dict(img_shape=(H, W), ori_shape=ori_shape,
                          pad_shape=(H, W))))
    return dict(inputs=inputs, data_samples=samples)


def check_loss_and_predict(model, num_classes):
    """Loss is finite and reaches the backbone; predictions come back at
    ``ori_shape`` (the resize done by mmseg's postprocessing)."""
    model.train()
    data = model.data_preprocessor(make_batch(num_classes), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert 'decode.loss_ce' in losses
    for name, value in losses.items():
        assert torch.isfinite(value).all(), name
    loss, _ = model.parse_losses(losses)
    loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)

    model.eval()
    # the second image stands for one aligned from 60x90 to 64x96
    ori_shapes = ((H, W), (60, 90))
    data = model.data_preprocessor(make_batch(num_classes, ori_shapes),
                                   training=False)
    with torch.no_grad():
        results = model.predict(data['inputs'], data['data_samples'])
    assert len(results) == 2
    for result, ori_shape in zip(results, ori_shapes):
        pred = result.pred_sem_seg.data
        assert pred.shape == (1, ) + ori_shape
        assert 0 <= pred.min() and pred.max() < num_classes
        assert result.seg_logits.data.shape == (num_classes, ) + ori_shape


# ---------------------------------------------------------------- configs
def test_all_configs_listed():
    assert set(CONFIGS) == set(ARCHS)


def test_metafile_lists_every_config_with_paper_results():
    yaml = pytest.importorskip('yaml')
    with open(osp.join(CONFIG_DIR, 'metafile.yml')) as f:
        meta = yaml.safe_load(f)
    models = {osp.basename(m['Config']): m for m in meta['Models']}
    assert set(models) == set(CONFIGS)
    for m in meta['Models']:
        assert osp.isfile(osp.join(REPO, m['Config']))
        assert m['Name'] == osp.splitext(osp.basename(m['Config']))[0]
        assert m['In Collection'] == backbone_class(m['Config']).__name__
        # the authors publish Semantic FPN M and B (mmseg 0.30 files)
        published = m['Name'] in ('semfpn_mvig2_m', 'semfpn_mvig2_b')
        assert ('SLDGroup/MobileViGv2' in m.get('Weights', '')) == published
        # and GreedyViG's authors S and B (their Sem_Segmentation/ folder)
        assert ('SLDGroup/GreedyViG/tree/main/Sem_Segmentation' in m.get(
            'Weights', '')) == (m['Name'] in ('semfpn_greedyvig_s',
                                              'semfpn_greedyvig_b'))
    results = {name: m['Results'][0]['Metrics']['mIoU']
               for name, m in models.items() if 'Results' in m}
    assert results == {'semfpn_mvig2_m.py': 42.9, 'semfpn_mvig2_b.py': 44.3}


@pytest.mark.parametrize('name', CONFIGS)
def test_config_contents(name):
    cfg = load(name)
    arch = ARCHS[name]
    family = backbone_class(name).__name__
    channels = backbone_class(name).arch_settings[arch]['channels']
    import_modules_from_strings(**cfg.custom_imports)
    assert cfg.custom_imports == dict(imports=['mvig2_mm'],
                                      allow_failed_imports=False)
    assert cfg.get('efficient_conv_bn_eval') is None
    frozen = name.endswith('_frozen-bn.py')
    assert cfg.sync_bn == (None if frozen else 'torch')
    model = cfg.model
    assert model.pretrained is None
    assert dict(model.backbone) == dict(
        type=family, arch=arch, out_indices=(0, 1, 2, 3),
        norm_eval=frozen, drop_path_rate=0.1,
        drop_path_schedule='reference',
        init_cfg=dict(type='Pretrained',
                      checkpoint=f'checkpoints/{family.lower()}_{arch}_'
                      f'in1k.pth', prefix='backbone.', use_ema=True),
        **(dict(efficient_conv_bn_eval=True) if frozen else {}))
    if name.startswith('semfpn'):
        assert model.neck.type == 'FPN'
        assert model.neck.in_channels == channels
        assert model.decode_head.type == 'FPNHead'
    else:
        assert 'neck' not in model
        assert model.decode_head.type == 'UPerHead'
        assert model.decode_head.in_channels == channels
        assert model.auxiliary_head.in_channels == channels[2]
        assert model.auxiliary_head.num_classes == 150
    assert model.decode_head.num_classes == 150
    assert model.data_preprocessor.size == (512, 512)

    # recipe: AdamW 2e-4 / 1e-4, poly 0.9 to 0 over 40k iterations, 8x4
    assert dict(cfg.optim_wrapper.optimizer) == dict(
        type='AdamW', lr=2e-4, weight_decay=1e-4)
    assert [dict(s) for s in cfg.param_scheduler] == [dict(
        type='PolyLR', power=0.9, eta_min=0.0, begin=0, end=40000,
        by_epoch=False)]
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == 40000
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.auto_scale_lr.base_batch_size == 32
    assert cfg.train_dataloader.dataset.type == 'ADE20KDataset'
    crop = [t for t in cfg.train_dataloader.dataset.pipeline
            if t.type == 'RandomCrop']
    assert crop[0].crop_size == (512, 512)
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        steps = loader.dataset.pipeline
        assert [t.type for t in steps] == [
            'LoadImageFromFile', 'AlignResize', 'LoadAnnotations',
            'PackSegInputs']
        assert steps[1].scale == (2048, 512) and steps[1].keep_ratio
        assert steps[1].size_divisor == 32
    assert cfg.val_evaluator.type == 'IoUMetric'


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds_and_runs(name):
    cfg = load(name)
    model = build_segmentor(cfg.model)
    assert type(model.backbone) is backbone_class(name)
    assert model.backbone.channels == \
        backbone_class(name).arch_settings[ARCHS[name]]['channels']
    model.train()
    frozen = name.endswith('_frozen-bn.py')  # norm_eval
    assert all(m.training != frozen for m in model.backbone.modules()
               if isinstance(m, _BatchNorm))
    check_loss_and_predict(model, num_classes=150)


def test_config_init_cfg_loads_converted_imagenet_weights(tmp_path):
    # a converted ImageNet classifier checkpoint has ``backbone.`` keys
    source = MobileViGv2('ti')
    for p in source.parameters():
        p.data.uniform_(-1, 1)
    ckpt = tmp_path / 'mobilevigv2_ti_in1k.pth'
    torch.save(dict(state_dict={
        'backbone.' + k: v for k, v in source.state_dict().items()}), ckpt)
    cfg = load('semfpn_mvig2_ti.py')
    cfg.model.backbone.init_cfg.checkpoint = str(ckpt)
    model = build_segmentor(cfg.model)
    model.init_weights()
    for key, value in source.state_dict().items():
        torch.testing.assert_close(model.backbone.state_dict()[key], value)

    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'missing.pth')
    model = build_segmentor(cfg.model)
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        model.init_weights()


def test_config_init_cfg_loads_reference_checkpoint(reference, tmp_path):
    # an unconverted reference ImageNet checkpoint, EMA weights as the
    # reference segmentation recipe uses them
    state_dict = reference.state_dict('ti')
    ema = {k: v + 1 if v.is_floating_point() else v
           for k, v in state_dict.items()}
    ckpt = tmp_path / 'mobilevigv2_ti.pth'
    torch.save(dict(state_dict=state_dict, state_dict_ema=ema), ckpt)
    cfg = load('semfpn_mvig2_ti.py')
    cfg.model.backbone.init_cfg.update(checkpoint=str(ckpt), use_ema=True)
    model = build_segmentor(cfg.model)
    model.init_weights()
    key = 'backbone.0.0.dws.pw1.weight'
    torch.testing.assert_close(
        model.backbone.stages[0][0].pw1.conv.weight, ema[key])


# ------------------------------------------------- test pipeline, metric
def write_sample(tmp_path, h=375, w=500):
    rng = np.random.default_rng(0)
    img_path = str(tmp_path / 'img.jpg')
    seg_path = str(tmp_path / 'seg.png')
    mmcv.imwrite(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), img_path)
    seg = np.zeros((h, w), np.uint8)
    seg[:, w // 2:] = 3  # ADE20K labels 1..150, 0 = ignore
    seg[h // 2:, :] = 1
    mmcv.imwrite(seg, seg_path)
    return dict(img_path=img_path, seg_map_path=seg_path,
                reduce_zero_label=True, seg_fields=[])


@pytest.mark.parametrize('name', CONFIGS)
def test_test_pipeline_aligns(name, tmp_path):
    cfg = load(name)
    pipeline = Compose([TRANSFORMS.build(t)
                        for t in cfg.test_dataloader.dataset.pipeline])
    packed = pipeline(write_sample(tmp_path))
    inputs, sample = packed['inputs'], packed['data_samples']
    h, w = inputs.shape[1:]
    assert (h % 32, w % 32) == (0, 0)
    assert (h, w) == sample.img_shape == (512, 704)
    assert sample.ori_shape == (375, 500)
    assert sample.scale_factor == pytest.approx((704 / 500, 512 / 375))
    # aspect ratio kept up to the rounding to 32 px
    assert abs(w / h - 500 / 375) < 32 / 512
    # annotations are loaded after the resize: original size for metrics
    assert sample.gt_sem_seg.data.shape == (1, 375, 500)


def test_evaluation_at_original_size(tmp_path):
    cfg = load('semfpn_mvig2_ti.py')
    pipeline = Compose([TRANSFORMS.build(t)
                        for t in cfg.test_dataloader.dataset.pipeline])
    packed = pipeline(write_sample(tmp_path))
    model = build_segmentor(cfg.model).eval()
    batch = dict(inputs=[packed['inputs']],
                 data_samples=[packed['data_samples']])
    with torch.no_grad():
        results = model.test_step(batch)
    assert results[0].pred_sem_seg.data.shape == (1, 375, 500)

    metric = IoUMetric(iou_metrics=['mIoU'])
    metric.dataset_meta = dict(classes=[f'c{i}' for i in range(150)])
    metric.process(batch, [r.to_dict() for r in results])
    scores = metric.compute_metrics(metric.results)
    assert 0 <= scores['mIoU'] <= 100 and 0 <= scores['aAcc'] <= 100


def test_inference_api(tmp_path):
    # mmseg.apis reads the top-level ``test_pipeline`` (AlignResize)
    from mmseg.apis import inference_model, init_model
    model = init_model(osp.join(CONFIG_DIR, 'semfpn_mvig2_ti.py'),
                       device='cpu')
    img = np.random.default_rng(0).integers(0, 256, (375, 500, 3),
                                            dtype=np.uint8)
    result = inference_model(model, img)
    assert result.img_shape == (512, 704)
    assert result.pred_sem_seg.data.shape == (1, 375, 500)


# ------------------------------------- MobileViGv2 in mmseg's own configs
def swap_backbone(model_cfg, arch, backbone=MobileViGv2):
    """Put ``backbone`` (MobileViGv2 or MobileViG) into an mmseg model config
    with a ResNet backbone.

    A neck takes the four stages; heads without a neck get the channels of
    the stages their ``in_index`` names (``c1_index`` for the DeepLabV3+
    low-level branch)."""
    model_cfg = copy.deepcopy(model_cfg)
    channels = backbone.arch_settings[arch]['channels']
    model_cfg.pretrained = None
    model_cfg.backbone = dict(type=backbone.__name__, arch=arch,
                              out_indices=(0, 1, 2, 3), norm_eval=True)
    if model_cfg.get('neck') is not None:
        model_cfg.neck.in_channels = list(channels)
        heads = []
    else:
        heads = [model_cfg.decode_head]
    aux = model_cfg.get('auxiliary_head') or []
    heads += aux if isinstance(aux, list) else [aux]
    for head in heads:
        index = head.in_index
        head.in_channels = ([channels[i] for i in index]
                            if isinstance(index, (list, tuple))
                            else channels[index])
        if 'c1_in_channels' in head:
            head.c1_in_channels = channels[head.get('c1_index', 0)]
    return model_cfg


@pytest.mark.parametrize('base,head,in_channels,aux', [
    ('fpn_r50.py', 'FPNHead', [256] * 4, None),  # after the FPN neck
    ('upernet_r50.py', 'UPerHead', [32, 64, 128, 256], 'FCNHead'),
    ('deeplabv3plus_r50-d8.py', 'DepthwiseSeparableASPPHead', 256, 'FCNHead'),
    ('pspnet_r50-d8.py', 'PSPHead', 256, 'FCNHead'),
])
def test_backbone_in_mmseg_configs(base, head, in_channels, aux):
    cfg = Config.fromfile(osp.join(MMSEG_CONFIGS, '_base_', 'models', base))
    model_cfg = swap_backbone(cfg.model, 'ti')
    for key in ('decode_head', 'auxiliary_head'):
        if key in model_cfg:  # narrower heads keep the CPU test quick
            model_cfg[key].channels = 64
    model = build_segmentor(model_cfg)
    assert isinstance(model.backbone, MobileViGv2)
    assert type(model.decode_head).__name__ == head
    assert model.decode_head.in_channels == in_channels
    if isinstance(in_channels, int):  # single input: the last stage
        assert model.decode_head.in_index == 3
    if head == 'DepthwiseSeparableASPPHead':  # low-level branch: stage 0
        assert model.decode_head.c1_bottleneck.conv.in_channels == 32
    if aux:
        assert type(model.auxiliary_head).__name__ == aux
        assert model.auxiliary_head.in_channels == 128  # stage 2
    check_loss_and_predict(model, cfg.model.decode_head.num_classes)


@pytest.mark.parametrize('base,head', [('fpn_r50.py', 'FPNHead'),
                                       ('upernet_r50.py', 'UPerHead')])
def test_mobilevig_in_mmseg_configs(base, head):
    """The predecessor family in mmseg's own configs."""
    cfg = Config.fromfile(osp.join(MMSEG_CONFIGS, '_base_', 'models', base))
    model_cfg = swap_backbone(cfg.model, 'ti', MobileViG)
    for key in ('decode_head', 'auxiliary_head'):
        if key in model_cfg:
            model_cfg[key].channels = 64
    model = build_segmentor(model_cfg)
    assert isinstance(model.backbone, MobileViG)
    assert type(model.decode_head).__name__ == head
    check_loss_and_predict(model, cfg.model.decode_head.num_classes)
