"""mmdeploy's conversion to ONNX Runtime (tools/deployment/mmdeploy_convert.py,
mvig2_mm.deployment.end2end): a stand-in published Mask R-CNN and Semantic
FPN converted whole, their predictions equal to mmdet's / mmseg's; the
exported Mask R-CNN evaluated by tools/test.py --backend onnxruntime (the
COCO metrics of the checkpoint); the compatibility patches; the one-line
errors."""
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from mmengine.config import Config

from mvig2_mm.deployment.end2end import (MatchReport, backend_model,
                                         compare_predictions, convert, predict)
from mvig2_mm.testing.synthetic_coco import make_image
from tools.deployment.mmdeploy_convert import main

REPO = Path(__file__).resolve().parents[2]
DET_CONFIG = REPO / 'configs' / 'detection' / 'maskrcnn_mvig2_ti.py'
V1_CONFIG = REPO / 'configs' / 'detection' / 'maskrcnn_mvig_m.py'
SEG_CONFIG = REPO / 'configs' / 'segmentation' / 'semfpn_mvig2_ti.py'
DEMO_DET_CONFIG = (REPO / 'configs' / 'detection' / 'demo' /
                   'maskrcnn_mvig2_ti_shapes.py')
CLS_CONFIG = REPO / 'configs' / 'classification' / 'mvig2_ti_in1k.py'
SIZE = 128  # the test pipelines' resize: small, quick
SCORE_THR = 0.05


def small(config, resize='Resize'):
    """``config`` with a test pipeline that resizes to SIZE."""
    cfg = Config.fromfile(str(config))
    for step in cfg.test_dataloader.dataset.pipeline:
        if step['type'] == resize:
            step['scale'] = (SIZE, SIZE)
    cfg.test_pipeline = cfg.test_dataloader.dataset.pipeline
    return cfg


def shapes_images(count, size=(SIZE, SIZE)):
    """Synthetic shapes images (BGR), reproducible."""
    rng = np.random.default_rng(0)
    return [make_image(rng, size, 4, 24, 64)[0] for _ in range(count)]


def sharpen_classifier(ckpt):
    """A stand-in's heads are not trained: their class scores are flat
    (COCO's: 0.01-0.05), with near-ties that a rounding difference
    reorders in the NMS; a sharper classifier spreads them."""
    content = torch.load(ckpt, weights_only=True)
    for name in ('weight', 'bias'):
        content['state_dict'][f'roi_head.bbox_head.fc_cls.{name}'] *= 8
    torch.save(content, ckpt)


def published_maskrcnn(published, tmp_path, family='mobilevigv2'):
    """A stand-in published Mask R-CNN-Ti of ``family`` (mmdet 2.x layout,
    reference backbone keys): its config (test pipeline at SIZE, fewer
    proposals and detections than COCO's, for time) and its file."""
    cfg = small(DET_CONFIG if family == 'mobilevigv2' else V1_CONFIG)
    if family == 'mobilevig':  # MobileViG-Ti: no config of its own
        cfg.model.backbone.arch = 'ti'
        cfg.model.neck.in_channels = [42, 84, 168, 256]
    config = tmp_path / 'maskrcnn_ti.py'
    cfg.dump(str(config))
    ckpt = tmp_path / f'mask_rcnn_{family}_ti.pth'
    published.whole_model(config, 'ti', ckpt, 'mmdet', family=family)
    sharpen_classifier(ckpt)
    cfg.model.test_cfg.rcnn.score_thr = SCORE_THR
    cfg.model.test_cfg.rpn.update(nms_pre=300, max_per_img=200)
    cfg.model.test_cfg.rcnn.max_per_img = 50
    cfg.dump(str(config))  # the config converted, for the tools
    return cfg, ckpt


def assert_equal_to_mmdet(cfg, ckpt, out_dir, sdk=True):
    """Convert, predict with both on the traced size and another that needs
    no padding (mmdeploy clips boxes to the padded input:
    docs/deployment.md), and check every detection down to the head's
    score_thr."""
    result = convert(cfg, str(ckpt), str(out_dir), sdk=sdk)
    ort_model = backend_model(result.onnx_file, cfg, result.deploy_cfg)
    images = shapes_images(1) + shapes_images(1, (96, SIZE))
    expected = predict(result.torch_model, cfg, result.deploy_cfg, images)
    actual = predict(ort_model, cfg, result.deploy_cfg, images)
    report = compare_predictions(expected, actual, score_thr=SCORE_THR)
    assert report.expected >= 60, report.summary()  # a real comparison
    assert report.passed(), report.summary() + '; ' + '; '.join(
        report.unmatched)
    assert report.worst_iou > 0.999 and report.worst_score_diff < 1e-4
    return result


@pytest.fixture(scope='module')
def converted_maskrcnn(published, tmp_path_factory):
    """The stand-in published Mask R-CNN-Ti converted with the SDK
    metadata, checked equal to mmdet's predict (:func:`assert_equal_to_mmdet`
    in the fixture, so that the tests that use the conversion share it):
    its config (also as a file, ``config``), checkpoint and folder."""
    folder = tmp_path_factory.mktemp('maskrcnn')
    cfg, ckpt = published_maskrcnn(published, folder)
    assert_equal_to_mmdet(cfg, ckpt, folder / 'ort')
    return SimpleNamespace(cfg=cfg, config=folder / 'maskrcnn_ti.py',
                           checkpoint=ckpt, out=folder / 'ort')


@pytest.mark.slow
def test_maskrcnn_published_equals_mmdet(converted_maskrcnn):
    """A stand-in published Mask R-CNN (mmdet 2.x layout, reference
    backbone keys) converted as it is: every detection of mmdet's predict
    (all, down to the head's score_thr) matched, the masks equal (checked
    by the fixture); the SDK metadata names the model's files and
    pipeline."""
    out = converted_maskrcnn.out
    deploy = json.loads((out / 'deploy.json').read_text())
    assert deploy['models'][0]['net'] == 'end2end.onnx'
    pipeline = json.loads((out / 'pipeline.json').read_text())
    tasks = [task['name'] for task in pipeline['pipeline']['tasks']]
    assert 'mmdetection' in tasks or 'postprocess' in tasks, tasks


@pytest.mark.slow
def test_infer_onnxruntime_equals_pytorch(converted_maskrcnn, tmp_path):
    """tools/infer.py --backend onnxruntime on the converted folder writes
    the files that the PyTorch path writes, with the same detections (same
    labels, boxes to 1e-2 px, scores to 1e-4) and the same pictures."""
    from PIL import Image

    from tools.infer import main as infer
    images = tmp_path / 'images'
    images.mkdir()
    import cv2
    for i, image in enumerate(shapes_images(2)):
        cv2.imwrite(str(images / f'{i}.png'), image)
    outs = dict(pytorch=tmp_path / 'pytorch', onnxruntime=tmp_path / 'ort')
    common = [str(converted_maskrcnn.config)]
    infer(common + [str(converted_maskrcnn.checkpoint), str(images),
                    '--out-dir', str(outs['pytorch']), '--device', 'cpu',
                    '--score-thr', '0.3'])
    infer(common + [str(converted_maskrcnn.out), str(images), '--out-dir',
                    str(outs['onnxruntime']), '--device', 'cpu',
                    '--score-thr', '0.3', '--backend', 'onnxruntime'])

    def files(folder):
        return sorted(p.relative_to(folder) for p in folder.rglob('*')
                      if p.is_file())

    assert files(outs['pytorch']) == files(outs['onnxruntime'])
    drawn = 0
    for name in files(outs['pytorch']):
        a, b = (outs[backend] / name for backend in ('pytorch',
                                                     'onnxruntime'))
        if name.suffix == '.json':
            a, b = json.loads(a.read_text()), json.loads(b.read_text())
            keep_a = [s >= SCORE_THR for s in a['scores']]
            keep_b = [s >= SCORE_THR for s in b['scores']]
            assert sum(keep_a) == sum(keep_b) > 0
            assert a['labels'][:sum(keep_a)] == b['labels'][:sum(keep_b)]
            np.testing.assert_allclose(a['scores'][:sum(keep_a)],
                                       b['scores'][:sum(keep_b)], atol=1e-4)
            np.testing.assert_allclose(a['bboxes'][:sum(keep_a)],
                                       b['bboxes'][:sum(keep_b)], atol=1e-2)
        else:
            a, b = (np.asarray(Image.open(p)).astype(int) for p in (a, b))
            differ = (np.abs(a - b).max(-1) > 1).mean()
            assert differ < 1e-3, f'{name}: {100 * differ:.2f}% of pixels'
            drawn += 1
    assert drawn == 2


@pytest.mark.slow
def test_maskrcnn_mobilevig_v1_equals_mmdet(published, tmp_path):
    """The same for MobileViG (v1): its graph convolution (SVGA: every
    shift in one gather, their minimum) through mmdeploy's exporter. Also
    proposals that clipping to the image leaves without width (one anchor
    shape's boxes pushed right by three widths): mmdet's RPN drops them
    (``min_bbox_size``), and so does the exported model (without that
    filter: 68 of 100 detections matched)."""
    cfg, ckpt = published_maskrcnn(published, tmp_path, family='mobilevig')
    content = torch.load(ckpt, weights_only=True)
    content['state_dict']['rpn_head.rpn_reg.bias'][0] += 3.  # anchor 0, dx
    torch.save(content, ckpt)
    assert_equal_to_mmdet(cfg, ckpt, tmp_path / 'ort', sdk=False)


def pseudo_ground_truth(preds, images, path):
    """A COCO annotation file of ``images`` (paths, demo classes) whose
    objects are the detections ``preds`` (their boxes and RLE masks)."""
    from pycocotools import mask as mask_util

    from mvig2_mm.testing.synthetic_coco import CLASSES
    entries, annotations = [], []
    for image_id, (image, pred) in enumerate(zip(images, preds), 1):
        height, width = pred.ori_shape
        entries.append(dict(id=image_id, file_name=Path(image).name,
                            height=height, width=width))
        inst = pred.pred_instances
        for box, label, mask in zip(inst.bboxes.tolist(),
                                    inst.labels.tolist(),
                                    inst.masks.numpy().astype(np.uint8)):
            if not mask.any():  # no object to find
                continue
            rle = mask_util.encode(np.asfortranarray(mask))
            x0, y0, x1, y1 = box
            annotations.append(dict(
                id=len(annotations) + 1, image_id=image_id,
                category_id=label + 1, iscrowd=0, area=float(mask.sum()),
                bbox=[x0, y0, x1 - x0, y1 - y0],
                segmentation=dict(size=rle['size'],
                                  counts=rle['counts'].decode())))
    categories = [dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)]
    Path(path).write_text(json.dumps(dict(
        images=entries, annotations=annotations, categories=categories)))
    return len(annotations)


def logged_metrics(work_dir):
    """The metrics tools/test.py logged under ``work_dir`` (mmengine's
    LoggerHook writes them to WORK_DIR/TIMESTAMP/TIMESTAMP.json)."""
    logs = sorted(Path(work_dir).glob('*/*.json'))
    assert len(logs) == 1, logs
    return json.loads(logs[0].read_text())


@pytest.mark.slow
def test_test_tool_onnxruntime_equals_pytorch(published, tmp_path):
    """tools/test.py --backend onnxruntime on the converted folder gives
    the COCO box and mask metrics that tools/test.py gives with the
    checkpoint, on images that need no padding (128x128, the test
    pipeline's size), through the config's own dataloader and evaluator.

    An untrained stand-in scores AP ~0 on real ground truth, which would
    not tell the two apart; the ground truth here is the PyTorch model's
    own detections: PyTorch scores about 1.0, and any box or mask that
    the exported model moves or misses lowers its AP (the same model
    exported with an NMS IoU threshold of 0.6 instead of 0.5: AP 0.934)."""
    from tools.test import main as test_tool
    cfg = Config.fromfile(str(DEMO_DET_CONFIG))
    config = tmp_path / 'maskrcnn_demo.py'
    cfg.dump(str(config))
    ckpt = tmp_path / 'mask_rcnn_demo.pth'
    published.whole_model(config, 'ti', ckpt, 'mmdet')
    sharpen_classifier(ckpt)
    result = convert(cfg, str(ckpt), str(tmp_path / 'ort'), sdk=False)
    root = tmp_path / 'data'
    (root / 'val').mkdir(parents=True)
    import cv2
    images = []
    for i, image in enumerate(shapes_images(4)):
        images.append(str(root / 'val' / f'{i}.png'))
        cv2.imwrite(images[-1], image)
    expected = predict(result.torch_model, cfg, result.deploy_cfg, images)
    ann_file = root / 'instances_val.json'
    assert pseudo_ground_truth(expected, images, ann_file) >= 20
    options = ['--cfg-options', f'test_dataloader.dataset.data_root={root}',
               'test_dataloader.dataset.ann_file=instances_val.json',
               f'test_evaluator.ann_file={ann_file}']
    metrics = {}
    for backend, model in (('pytorch', ckpt),
                           ('onnxruntime', tmp_path / 'ort')):
        work_dir = tmp_path / backend
        assert test_tool([str(config), str(model), '--backend', backend,
                          '--work-dir', str(work_dir)] + options) is None
        metrics[backend] = logged_metrics(work_dir)
    coco = {key: value for key, value in metrics['pytorch'].items()
            if key.startswith('coco/')}
    assert len(coco) == 12 and coco['coco/bbox_mAP'] > 0.9, coco
    assert coco['coco/segm_mAP'] > 0.9, coco
    assert {key: metrics['onnxruntime'][key] for key in coco} == coco


def test_test_tool_onnxruntime_without_onnx_one_line(tmp_path, capsys):
    """tools/test.py --backend onnxruntime on a folder without
    end2end.onnx (e.g. a checkpoint's folder) ends with one line naming
    the folder that is expected."""
    from tools.test import main as test_tool
    assert test_tool([str(DEMO_DET_CONFIG), str(tmp_path), '--backend',
                      'onnxruntime', '--work-dir',
                      str(tmp_path / 'work')]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f'tools/test.py: error: {tmp_path}/end2end.onnx not found: with '
        f'--backend onnxruntime CHECKPOINT is the folder that '
        f'tools/deployment/mmdeploy_convert.py wrote']


def test_test_tool_onnxruntime_classifier_one_line(tmp_path, capsys):
    """A classifier's config with --backend onnxruntime: one line (its
    task has no deploy config; mmdeploy_convert.py converts detectors and
    segmentors)."""
    from tools.test import main as test_tool
    (tmp_path / 'end2end.onnx').write_bytes(b'')
    assert test_tool([str(CLS_CONFIG), str(tmp_path), '--backend',
                      'onnxruntime', '--work-dir',
                      str(tmp_path / 'work')]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "tools/test.py: error: the config's default_scope is 'mmpretrain': "
        '--backend onnxruntime runs the mmdet and mmseg models that '
        'tools/deployment/mmdeploy_convert.py converts (a classifier: its '
        'checkpoint, --backend pytorch)']


def test_test_tool_onnxruntime_without_mmdeploy_one_line(
        monkeypatch, capsys, tmp_path):
    """tools/test.py --backend onnxruntime without mmdeploy (hidden from
    the import system): one line naming the install command, before any
    work."""
    from tools.test import main as test_tool
    (tmp_path / 'end2end.onnx').write_bytes(b'')
    monkeypatch.setitem(sys.modules, 'mmdeploy', None)
    assert test_tool([str(DEMO_DET_CONFIG), str(tmp_path), '--backend',
                      'onnxruntime', '--work-dir',
                      str(tmp_path / 'work')]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        'tools/test.py: error: mmdeploy is not installed: pip install '
        '--no-deps mmdeploy==1.3.1 (tools/setup_env.sh installs it)']


def test_roi_align_of_small_rois_equals_mmcv(tmp_path):
    """mmcv's RoIAlign (aligned, as Mask R-CNN's) through mmdeploy's
    symbolic and the project's deploy config (opset 16: ONNX's RoiAlign
    with half_pixel coordinates) equals mmcv's for RoIs of every size,
    those under one feature pixel included (at opset 11 ONNX Runtime makes
    them one pixel wide: differences up to 2.0)."""
    import onnxruntime as ort
    from mmcv.ops import RoIAlign
    from mmdeploy.apis.onnx import export

    from mvig2_mm.deployment.end2end import DEPLOY_CONFIG_DIR
    from mvig2_mm.deployment.mmdeploy_compat import mmdeploy_patched
    deploy_cfg = Config.fromfile(
        str(Path(DEPLOY_CONFIG_DIR) / 'instance-seg_onnxruntime_dynamic.py'))
    roi_align = RoIAlign((7, 7), 0.25, 0, 'avg', True)
    g = torch.Generator().manual_seed(0)
    features = torch.randn(1, 8, 40, 40, generator=g)

    def rois(side):
        corner = torch.rand(50, 2, generator=g) * 120
        return torch.cat([torch.zeros(50, 1), corner, corner + side], 1)

    with mmdeploy_patched():
        import mmdeploy.mmcv.ops  # noqa: F401 (registers the symbolic)
        export(roi_align, (features, rois(20.)),
               output_path_prefix=str(tmp_path / 'roi_align'),
               backend='onnxruntime',
               context_info=dict(deploy_cfg=deploy_cfg),
               input_names=['features', 'rois'], output_names=['out'],
               opset_version=deploy_cfg.onnx_config.opset_version,
               dynamic_axes=dict(rois={0: 'n'}, out={0: 'n'}))
    session = ort.InferenceSession(str(tmp_path / 'roi_align.onnx'),
                                   providers=['CPUExecutionProvider'])
    for side in (40., 4., 2., 0.5, 0.):
        boxes = rois(side)
        with torch.no_grad():
            expected = roi_align(features, boxes).numpy()
        actual, = session.run(None, dict(features=features.numpy(),
                                         rois=boxes.numpy()))
        assert np.abs(expected - actual).max() < 1e-5, side


@pytest.mark.slow
def test_segmentation_through_the_tool(published, tmp_path, capsys):
    """A Semantic FPN config through the tool: --verify passes (every
    pixel's class equal to mmseg's), and the SDK metadata is refused in one
    line for its AlignResize."""
    ckpt = tmp_path / 'sem_fpn_mobilevigv2_ti.pth'
    published.whole_model(SEG_CONFIG, 'ti', ckpt, 'mmseg')
    images = tmp_path / 'images'
    images.mkdir()
    import cv2
    for i, image in enumerate(shapes_images(2, (96, 128))):
        cv2.imwrite(str(images / f'{i}.png'), image)
    args = [str(SEG_CONFIG), '--checkpoint', str(ckpt), '--out',
            str(tmp_path / 'ort'), '--cfg-options',
            'test_dataloader.dataset.pipeline.1.scale=(128,128)',
            'test_pipeline.1.scale=(128,128)']
    assert main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if 'error' in line] == [
        "tools/deployment/mmdeploy_convert.py: error: mmdeploy's SDK "
        "pipeline has no AlignResize (the config's test pipeline): convert "
        'without the SDK metadata (sdk=False, --no-sdk); the ONNX model '
        "runs through mmdeploy's Python wrapper (tools/infer.py --backend "
        'onnxruntime)']
    assert main(args + ['--no-sdk', '--verify', '--images',
                        str(images)]) == 0
    out = capsys.readouterr().out
    assert 'onnxruntime == PyTorch: 2 image(s): the same class at ' \
        '24576/24576 pixels' in out, out


def test_comparison_fails_on_a_moved_box():
    """The criteria can fail: a box moved by 2 px (IoU 0.95), a score off
    by 0.01, a missing detection, a mask off by a column."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    def sample(boxes, scores, labels, shift=0):
        masks = torch.zeros(len(boxes), 100, 100, dtype=torch.bool)
        for i, (x0, y0, x1, y1) in enumerate(boxes):
            masks[i, y0:y1, x0 + shift:x1 + shift] = True
        inst = InstanceData(bboxes=torch.tensor(boxes, dtype=torch.float),
                            scores=torch.tensor(scores),
                            labels=torch.tensor(labels), masks=masks)
        return DetDataSample(pred_instances=inst)

    ref = sample([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, 0.8], [0, 1])
    same = sample([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, 0.8], [0, 1])
    assert compare_predictions([ref], [same]).passed()
    moved = sample([[12, 10, 52, 50], [60, 60, 90, 90]], [0.9, 0.8], [0, 1])
    report = compare_predictions([ref], [moved])
    assert (report.matched, report.expected, report.extra) == (1, 2, 1)
    assert report.worst_iou == pytest.approx(0.9048, abs=1e-4)
    assert not report.passed()
    off = sample([[10, 10, 50, 50], [60, 60, 90, 90]], [0.91, 0.8], [0, 1])
    assert compare_predictions([ref], [off]).matched == 1
    missing = sample([[10, 10, 50, 50]], [0.9], [0])
    report = compare_predictions([ref], [missing])
    assert report.unmatched == ['image 0: label 1 score 0.800: none']
    shifted = sample([[10, 10, 50, 50], [60, 60, 90, 90]], [0.9, 0.8],
                     [0, 1], shift=1)
    report = compare_predictions([ref], [shifted])
    assert report.matched == 2 and not report.passed()
    assert report.worst_mask_agreement < 0.99
    assert isinstance(report, MatchReport)


def test_patches_only_while_converting():
    """torch.onnx.export defaults to the TorchScript exporter and
    symbolic_opset9 has _cast_Long only inside the context."""
    import torch.onnx.symbolic_opset9 as opset9

    from mvig2_mm.deployment.mmdeploy_compat import mmdeploy_patched
    export = torch.onnx.export
    with mmdeploy_patched():
        assert torch.onnx.export is not export
        assert hasattr(opset9, '_cast_Long')
    assert torch.onnx.export is export
    assert not hasattr(opset9, '_cast_Long')


def test_wrong_mmdeploy_version_one_line(monkeypatch, capsys, tmp_path):
    import mmdeploy
    monkeypatch.setattr(mmdeploy, '__version__', '1.2.0')
    assert main([str(DET_CONFIG), '--out', str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        'tools/deployment/mmdeploy_convert.py: error: mmdeploy 1.2.0 is '
        'installed; the conversion is written for mmdeploy 1.3.1 (its '
        'compatibility patches in mvig2_mm/deployment/mmdeploy_compat.py): '
        'pip install --no-deps mmdeploy==1.3.1 (tools/setup_env.sh installs '
        'it)']


def test_missing_mmdeploy_one_line(monkeypatch, capsys, tmp_path):
    """Without mmdeploy (hidden from the import system: ``import mmdeploy``
    raises ImportError) the tool ends with one line naming the install
    command."""
    monkeypatch.setitem(sys.modules, 'mmdeploy', None)
    assert main([str(DET_CONFIG), '--out', str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        'tools/deployment/mmdeploy_convert.py: error: mmdeploy is not '
        'installed: pip install --no-deps mmdeploy==1.3.1 '
        '(tools/setup_env.sh installs it)']
