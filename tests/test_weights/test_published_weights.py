"""The published MobileViGv2 files (stand-ins built from the reference
weights in each layout the authors saved) load wherever a checkpoint is
accepted: the libraries' own APIs with our configs, ``load_from``,
``init_cfg``, the converter and the deploy form."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from mvig2_mm.weights import (CheckpointMismatchError, check_checkpoint,
                              convert_checkpoint)

REPO = Path(__file__).resolve().parents[2]
DET = REPO / 'configs/detection/maskrcnn_mvig2_ti.py'
SEG = REPO / 'configs/segmentation/semfpn_mvig2_ti.py'
CLS = REPO / 'configs/classification/mvig2_ti_in1k.py'


def assert_found_by_value(file_state_dict, model):
    """Every tensor of the file is a tensor of the model (same values,
    whatever its name; a 1x1 conv classifier may have become a linear one),
    and the model has no tensor left over."""
    own = list(model.state_dict().values())
    by_size = {}
    for tensor in own:
        by_size.setdefault(tensor.numel(), []).append(tensor.flatten().cpu())
    for name, tensor in file_state_dict.items():
        assert any(torch.equal(tensor.flatten().cpu(), t)
                   for t in by_size.get(tensor.numel(), [])), name
    assert len(own) == len(file_state_dict)


def assert_reference_features(backbone, reference, variant='ti'):
    _, x = reference.inputs()
    with torch.no_grad():
        outs = backbone.eval()(x)
    for out, exp in zip(outs, reference.expected(variant)['features']):
        torch.testing.assert_close(out, exp, atol=1e-4, rtol=1e-4)


@pytest.fixture(scope='module')
def coco_file(published, tmp_path_factory):
    path = tmp_path_factory.mktemp('published') / 'mobilevigv2_ti_coco.pth'
    return path, published.whole_model(DET, 'ti', path, 'mmdet')


@pytest.fixture(scope='module')
def ade_file(published, tmp_path_factory):
    path = tmp_path_factory.mktemp('published') / 'mobilevigv2_ti_ade.pth'
    return path, published.whole_model(SEG, 'ti', path, 'mmseg')


@pytest.fixture(scope='module')
def imagenet_file(published, tmp_path_factory):
    path = tmp_path_factory.mktemp('published') / 'mobilevigv2_ti.pth'
    return path, published.imagenet('ti', path)


# ------------------------------------------------------- library APIs
def test_coco_file_in_mmdet_apis(coco_file, reference):
    from mmdet.apis import DetInferencer, init_detector
    from mmdet.datasets import CocoDataset
    path, weights = coco_file
    model = init_detector(str(DET), str(path), device='cpu')
    assert_found_by_value(weights, model)
    assert_reference_features(model.backbone, reference)
    assert model.dataset_meta['classes'] == CocoDataset.METAINFO['classes']

    inferencer = DetInferencer(model=str(DET), weights=str(path),
                               device='cpu', show_progress=False)
    assert_found_by_value(weights, inferencer.model)


def test_ade_file_in_mmseg_apis(ade_file, reference):
    from mmseg.apis import MMSegInferencer, init_model
    from mmseg.datasets import ADE20KDataset
    path, weights = ade_file
    model = init_model(str(SEG), str(path), device='cpu')
    assert_found_by_value(weights, model)
    assert_reference_features(model.backbone, reference)
    assert tuple(model.dataset_meta['classes']) == \
        ADE20KDataset.METAINFO['classes']

    inferencer = MMSegInferencer(model=str(SEG), weights=str(path),
                                 device='cpu')
    assert_found_by_value(weights, inferencer.model)


def test_imagenet_file_in_mmpretrain_apis(imagenet_file, reference):
    from mmpretrain.apis import ImageClassificationInferencer, init_model
    path, weights = imagenet_file
    model = init_model(str(CLS), str(path), device='cpu', teacher=None)
    assert_found_by_value(weights, model)  # live weights, as evaluated
    assert_reference_features(model.backbone, reference)
    x, _ = reference.inputs()
    with torch.no_grad():
        logits = model.eval()(x, mode='tensor')
    torch.testing.assert_close(logits, reference.expected('ti')['logits'],
                               atol=1e-4, rtol=1e-4)

    inferencer = ImageClassificationInferencer(
        model=str(CLS), pretrained=str(path), device='cpu')
    assert_found_by_value(weights, inferencer.model)


def test_load_from_in_a_config(ade_file, tmp_path):
    """The Runner's ``load_from`` (mmengine's loader, non-strict) converts
    the file as it loads it."""
    from mmengine.runner import Runner
    path, weights = ade_file
    cfg = Config.fromfile(str(SEG))
    cfg.model.backbone.init_cfg = None
    cfg.work_dir = str(tmp_path)
    cfg.load_from = str(path)
    runner = Runner.from_cfg(cfg)
    runner.load_checkpoint(cfg.load_from)
    assert_found_by_value(weights, runner.model)


@pytest.mark.parametrize('kind', ['imagenet', 'coco', 'ade'])
def test_init_cfg_takes_the_backbone_of_every_file(kind, request, reference):
    from mvig2_mm.models import MobileViGv2
    path, _ = request.getfixturevalue(f'{kind}_file')
    model = MobileViGv2('ti', init_cfg=dict(
        type='Pretrained', checkpoint=str(path), prefix='backbone.',
        use_ema=kind != 'imagenet'))  # no EMA in whole-model files
    model.init_weights()
    assert_reference_features(model, reference)


def test_init_cfg_takes_ema_weights_as_the_reference(imagenet_file):
    """The detection/segmentation configs ask for the EMA weights (as the
    reference backbones load them)."""
    from mvig2_mm.models import MobileViGv2
    path, weights = imagenet_file
    cfg = Config.fromfile(str(DET)).model.backbone.init_cfg
    assert cfg.use_ema
    model = MobileViGv2('ti', init_cfg=dict(cfg, checkpoint=str(path)))
    model.init_weights()
    assert torch.equal(model.stem[0].conv.weight,
                       weights['stem.stem.0.weight'] + 1)


# ------------------------------------------------------- converter
@pytest.mark.parametrize('kind,task,config', [
    ('imagenet', 'classification', CLS), ('coco', 'detection', DET),
    ('ade', 'segmentation', SEG)])
def test_converter_recognises_each_file(kind, task, config, request,
                                        tmp_path, reference):
    from mvig2_mm.weights import load_checkpoint_strictly
    path, weights = request.getfixturevalue(f'{kind}_file')
    out, again = tmp_path / 'converted.pth', tmp_path / 'again.pth'
    tool = REPO / 'tools/model_converters/mobilevigv2_to_mm.py'
    for src, dst in ((path, out), (out, again)):
        proc = subprocess.run([sys.executable, str(tool), str(src), str(dst)],
                              capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        assert f'Converted {task} checkpoint' in proc.stdout
        assert "MobileViGv2 arch 'ti'" in proc.stdout
    converted = torch.load(out, weights_only=True)
    twice = torch.load(again, weights_only=True)
    assert converted['meta']['task'] == task
    assert list(converted['state_dict']) == list(twice['state_dict'])
    if kind != 'imagenet':
        classes = torch.load(path, weights_only=True)['meta']['CLASSES']
        assert converted['meta']['dataset_meta']['classes'] == tuple(classes)

    from mmengine.registry import MODELS
    cfg = Config.fromfile(str(config))
    cfg.model.backbone.init_cfg = None
    if 'teacher' in cfg.model:
        cfg.model.teacher = None
    with MODELS.switch_scope_and_registry(cfg.default_scope) as registry:
        model = registry.build(cfg.model)
    load_checkpoint_strictly(model, str(out))
    assert_found_by_value(weights, model)
    assert_reference_features(model.backbone, reference)


def test_convert_checkpoint_ema(imagenet_file):
    path, weights = imagenet_file
    content = torch.load(path, weights_only=True)
    ema = convert_checkpoint(content, use_ema=True)['state_dict']
    assert torch.equal(ema['backbone.stem.0.conv.weight'],
                       weights['stem.stem.0.weight'] + 1)
    with pytest.raises(KeyError, match='no EMA weights'):
        convert_checkpoint(dict(state_dict=weights), use_ema=True)


# ------------------------------------------------------- deploy form
def reparameterize(config, checkpoint, out):
    """tools/model_converters/reparameterize_model.py CONFIG CHECKPOINT OUT"""
    tool = REPO / 'tools/model_converters/reparameterize_model.py'
    proc = subprocess.run(
        [sys.executable, str(tool), str(config), str(checkpoint), str(out)],
        capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return out


def test_published_detector_in_deploy_form(coco_file, tmp_path, reference):
    """reparameterize_model.py takes the published file as it is; the result
    loads strictly into the config's deploy form, features unchanged."""
    from mmdet.apis import init_detector
    path, _ = coco_file
    out = reparameterize(DET, path, tmp_path / 'deploy.pth')
    model = init_detector(str(DET), str(out), device='cpu',
                          cfg_options={'model.backbone.deploy': True})
    check_checkpoint(model, torch.load(out, weights_only=True))
    assert model.backbone.deploy
    assert_reference_features(model.backbone, reference)
    assert model.dataset_meta['classes'][0] == 'person'


# ------------------------------------------------------- strict check
def test_check_names_the_cause(coco_file, ade_file, published, tmp_path):
    from mmdet.apis import init_detector
    path, weights = coco_file
    model = init_detector(str(DET), None, device='cpu')
    check_checkpoint(model, torch.load(path, weights_only=True))

    partial = {k: v for k, v in weights.items()
               if not k.startswith('backbone.backbone.3.')}
    with pytest.raises(CheckpointMismatchError) as info:
        check_checkpoint(model, dict(state_dict=partial), 'partial.pth')
    message = str(info.value)
    assert '\n' not in message
    assert message.startswith('partial.pth does not fit MaskRCNN: ')
    assert 'missing keys: backbone.stages.3.0.' in message
    assert 'likely cause: its MobileViGv2 weights are incomplete' in message

    other = tmp_path / 'm.pth'
    published.whole_model(REPO / 'configs/detection/maskrcnn_mvig2_m.py',
                          'm', other, 'mmdet')
    with pytest.raises(CheckpointMismatchError,
                       match=r"looks like arch 'm' \(MobileViGv2\) and the "
                             r"model is arch='ti'"):
        check_checkpoint(model, torch.load(other, weights_only=True))

    with pytest.raises(CheckpointMismatchError,
                       match='it is a segmentation checkpoint and the config '
                             'builds a detection model'):
        check_checkpoint(model, torch.load(ade_file[0], weights_only=True))

    resnet = {'conv1.weight': torch.zeros(64, 3, 7, 7),
              'layer1.0.conv1.weight': torch.zeros(64, 64, 1, 1)}
    with pytest.raises(CheckpointMismatchError,
                       match="holds no MobileViGv2 weights under 'backbone.'"):
        check_checkpoint(model, resnet)


def test_check_allows_what_the_caller_reinitialises(coco_file):
    from mmdet.apis import init_detector
    path, weights = coco_file
    model = init_detector(str(DET), None, device='cpu')
    kept = {k: v for k, v in weights.items() if not k.startswith('roi_head.')}
    with pytest.raises(CheckpointMismatchError):
        check_checkpoint(model, kept)
    check_checkpoint(model, kept, ignore=['roi_head.'])


def test_published_classifier_in_deploy_form(imagenet_file, tmp_path,
                                             reference):
    """The ImageNet file, reparameterised as it is, loads strictly into the
    deploy config; the logits stay the reference's."""
    from mmpretrain.apis import init_model
    path, _ = imagenet_file
    out = reparameterize(CLS, path, tmp_path / 'deploy.pth')
    deploy_config = (REPO / 'configs/classification/deploy/'
                     'mvig2_ti_in1k_deploy.py')
    model = init_model(str(deploy_config), str(out), device='cpu')
    check_checkpoint(model, torch.load(out, weights_only=True))
    x, _ = reference.inputs()
    with torch.no_grad():
        logits = model.eval()(x, mode='tensor')
    torch.testing.assert_close(logits, reference.expected('ti')['logits'],
                               atol=1e-4, rtol=1e-4)


# ------------------------------------------------------- MobileViG (v1)
def test_mobilevig_files_load_as_they_are(published, reference, tmp_path):
    """MobileViG's reference ImageNet file and its mmdet 2.28 Mask R-CNN
    file (the MobileViG repository's layout: ``backbone.`` + the
    reference names) load into our MobileViG configs as they are, and the
    converter recognises both."""
    from mmdet.apis import init_detector
    from mmpretrain.apis import init_model
    det_config = REPO / 'configs/detection/maskrcnn_mvig_m.py'
    det_file = tmp_path / 'mask_rcnn_mobilevig_m.pth'
    weights = published.whole_model(det_config, 'm', det_file, 'mmdet',
                                    family='mobilevig')
    model = init_detector(str(det_config), str(det_file), device='cpu')
    assert_found_by_value(weights, model)
    _, x = reference.inputs()
    with torch.no_grad():
        outs = model.backbone.eval()(x)
    for out, exp in zip(outs, reference.expected('m', 'mobilevig')[
            'features']):
        torch.testing.assert_close(out, exp, atol=1e-4, rtol=1e-4)

    cls_file = tmp_path / 'mobilevig_ti.pth'
    cls_weights = published.imagenet('ti', cls_file, family='mobilevig')
    cls_config = REPO / 'configs/classification/mvig_ti_in1k.py'
    classifier = init_model(str(cls_config), str(cls_file), device='cpu',
                            teacher=None)
    assert_found_by_value(cls_weights, classifier)

    tool = REPO / 'tools/model_converters/mobilevigv2_to_mm.py'
    for src, task, arch in ((det_file, 'detection', 'm'),
                            (cls_file, 'classification', 'ti')):
        proc = subprocess.run(
            [sys.executable, str(tool), str(src), str(tmp_path / 'out.pth')],
            capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        assert f"Converted {task} checkpoint" in proc.stdout
        assert f"MobileViG arch '{arch}'" in proc.stdout


def test_mobilevig_file_in_a_mobilevigv2_config_says_so(published, tmp_path):
    from mmdet.apis import init_detector
    det_file = tmp_path / 'mask_rcnn_mobilevig_m.pth'
    published.whole_model(REPO / 'configs/detection/maskrcnn_mvig_m.py', 'm',
                          det_file, 'mmdet', family='mobilevig')
    model = init_detector(str(REPO / 'configs/detection/maskrcnn_mvig2_m.py'),
                          None, device='cpu')
    with pytest.raises(CheckpointMismatchError,
                       match='it is a MobileViG checkpoint and the model is '
                             'MobileViGv2: use a MobileViG config'):
        check_checkpoint(model, torch.load(det_file, weights_only=True))


# ------------------------------------------------------------ GreedyViG
def test_greedyvig_files_load_as_they_are(published, reference, tmp_path):
    """GreedyViG's reference ImageNet file (its 1-D layer scales and the
    inverted residuals' ``layer_scale_2``), its mmdet 2.28 Mask R-CNN and
    its mmseg 0.30 Semantic FPN files load into our GreedyViG configs as
    they are, giving the reference features."""
    from mmdet.apis import init_detector
    from mmpretrain.apis import init_model
    from mmseg.apis import init_model as init_segmentor
    _, x = reference.inputs()
    expected = reference.expected('s', 'greedyvig')['features']
    for config, build, library in (
            ('detection/maskrcnn_greedyvig_s.py', init_detector, 'mmdet'),
            ('segmentation/semfpn_greedyvig_s.py', init_segmentor, 'mmseg')):
        path = tmp_path / f'{library}.pth'
        weights = published.whole_model(REPO / 'configs' / config, 's', path,
                                        library, family='greedyvig')
        model = build(str(REPO / 'configs' / config), str(path),
                      device='cpu')
        assert_found_by_value(weights, model)
        with torch.no_grad():
            outs = model.backbone.eval()(x)
        for out, exp in zip(outs, expected):
            torch.testing.assert_close(out, exp, atol=1e-4, rtol=1e-4)
    cls_file = tmp_path / 'S_GreedyViG_81_1.pth'
    cls_weights = published.imagenet('s', cls_file, family='greedyvig')
    classifier = init_model(
        str(REPO / 'configs/classification/greedyvig_s_in1k.py'),
        str(cls_file), device='cpu')
    assert_found_by_value(cls_weights, classifier)


def test_greedyvig_and_mobilevigv2_files_name_both_families(
        published, tmp_path):
    """GreedyViG's keys are MobileViGv2's once converted: the family is told
    by its graph blocks in stage 0, and a file of one family in the other's
    config names both."""
    from mmdet.apis import init_detector
    greedy = tmp_path / 'greedyvig_s.pth'
    published.whole_model(REPO / 'configs/detection/maskrcnn_greedyvig_s.py',
                          's', greedy, 'mmdet', family='greedyvig')
    v2 = tmp_path / 'mobilevigv2_s.pth'
    published.whole_model(REPO / 'configs/detection/maskrcnn_mvig2_s.py', 's',
                          v2, 'mmdet')
    for file, config, family, model_family in (
            (greedy, 'maskrcnn_mvig2_s.py', 'GreedyViG', 'MobileViGv2'),
            (v2, 'maskrcnn_greedyvig_s.py', 'MobileViGv2', 'GreedyViG')):
        model = init_detector(str(REPO / 'configs/detection' / config), None,
                              device='cpu')
        with pytest.raises(CheckpointMismatchError,
                           match=f'it is a {family} checkpoint and the model '
                                 f'is {model_family}: use a {family} config'):
            check_checkpoint(model, torch.load(file, weights_only=True))
