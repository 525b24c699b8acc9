"""mmdeploy's conversion to ONNX Runtime (tools/deployment/mmdeploy_convert.py,
mvig2_mm.deployment.end2end): a stand-in published Mask R-CNN and Semantic
FPN converted whole, their predictions equal to mmdet's / mmseg's; the
compatibility patches; the one-line errors."""
import json
import sys
from pathlib import Path

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
SEG_CONFIG = REPO / 'configs' / 'segmentation' / 'semfpn_mvig2_ti.py'
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


@pytest.mark.slow
def test_maskrcnn_published_equals_mmdet(published, tmp_path):
    """A stand-in published Mask R-CNN (mmdet 2.x layout, reference
    backbone keys) converted as it is: every detection of mmdet's predict
    (all, down to the head's score_thr) matched, the masks equal; the SDK
    metadata names the model's files and pipeline."""
    ckpt = tmp_path / 'mask_rcnn_mobilevigv2_ti.pth'
    published.whole_model(DET_CONFIG, 'ti', ckpt, 'mmdet')
    # the stand-in's heads are not trained: their class scores are flat
    # (0.01-0.05), with near-ties that a rounding difference reorders in
    # the NMS; a sharper classifier spreads them
    content = torch.load(ckpt, weights_only=True)
    for name in ('weight', 'bias'):
        content['state_dict'][f'roi_head.bbox_head.fc_cls.{name}'] *= 8
    torch.save(content, ckpt)
    cfg = small(DET_CONFIG)
    # fewer proposals and detections than COCO's, for time
    cfg.model.test_cfg.rcnn.score_thr = SCORE_THR
    cfg.model.test_cfg.rpn.update(nms_pre=300, max_per_img=200)
    cfg.model.test_cfg.rcnn.max_per_img = 50
    result = convert(cfg, str(ckpt), str(tmp_path / 'ort'))
    ort_model = backend_model(result.onnx_file, cfg, result.deploy_cfg)
    # the traced size, and another (dynamic sizes) that needs no padding:
    # mmdeploy clips boxes to the padded input (docs/deployment.md)
    images = shapes_images(1) + shapes_images(1, (96, SIZE))
    expected = predict(result.torch_model, cfg, result.deploy_cfg, images)
    actual = predict(ort_model, cfg, result.deploy_cfg, images)
    report = compare_predictions(expected, actual, score_thr=SCORE_THR)
    assert report.expected >= 60, report.summary()  # a real comparison
    assert report.passed(), report.summary() + '; ' + '; '.join(
        report.unmatched)
    assert report.worst_iou > 0.999 and report.worst_score_diff < 1e-4
    deploy = json.loads((tmp_path / 'ort' / 'deploy.json').read_text())
    assert deploy['models'][0]['net'] == 'end2end.onnx'
    pipeline = json.loads((tmp_path / 'ort' / 'pipeline.json').read_text())
    tasks = [task['name'] for task in pipeline['pipeline']['tasks']]
    assert 'mmdetection' in tasks or 'postprocess' in tasks, tasks


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
