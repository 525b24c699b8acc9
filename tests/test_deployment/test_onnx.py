"""ONNX export: round trip through onnxruntime, with dynamic sizes."""
from pathlib import Path

import pytest
import torch

INSTALL = 'pip install -e .[deploy]'
pytest.importorskip('onnx', reason=f'onnx is not installed ({INSTALL})')
pytest.importorskip('onnxruntime',
                    reason=f'onnxruntime is not installed ({INSTALL})')

from deploy_helpers import deploy_backbone  # noqa: E402

from mvig2_mm.deployment import build_export_model  # noqa: E402
from mvig2_mm.deployment import (detections_from_outputs, export,  # noqa: E402
                                 verify)
from tools.deployment.pytorch2onnx import main  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def test_backbone_dynamic_round_trip_where_hop_exceeds_stage_size(tmp_path):
    # Exported at 64x64, where no stage shifts (stage-1 map 8x8 with K=8,
    # 4x4 with K=4, 2x2 with K=2): a trace that froze that decision would
    # miss every shift at larger sizes.
    model = deploy_backbone()
    path = str(tmp_path / 'backbone.onnx')
    names = export(model, (64, 64), path, dynamic=True)
    assert names == ['stage0', 'stage1', 'stage2', 'stage3']
    report = verify(model, path, [(1, 64, 64), (2, 128, 96), (1, 40, 72),
                                  (1, 97, 131), (1, 32, 32)])
    assert [shape for shape, _ in report][1] == (2, 3, 128, 96)
    assert all(diff <= 1e-4 for _, diff in report)


def test_backbone_fixed_size_export(tmp_path):
    import onnx
    model = deploy_backbone()
    path = str(tmp_path / 'backbone.onnx')
    export(model, (96, 64), path)
    graph = onnx.load(path).graph
    dims = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 96, 64]
    assert not any(n.op_type == 'BatchNormalization' for n in graph.node)
    verify(model, path, [(1, 96, 64)])


def test_verify_reports_a_mismatch(tmp_path):
    model = deploy_backbone()
    path = str(tmp_path / 'backbone.onnx')
    export(model, (64, 64), path, dynamic=True)
    with torch.no_grad():
        model.backbone.stages[1][-1].ffn[1].conv.bias.add_(1.)
    with pytest.raises(AssertionError, match='differ by'):
        verify(model, path, [(1, 64, 64)])


def test_cli_classifier_dynamic_verify(tmp_path, capsys):
    out = tmp_path / 'cls.onnx'
    assert main(['--arch', 'ti', '--shape', '64', '--dynamic', '--verify',
                 '--out', str(out)]) == 0
    assert out.is_file()
    printed = capsys.readouterr().out
    assert '(TorchScript exporter)' in printed
    assert '-> logits; dynamic batch, height and width' in printed
    assert 'onnxruntime == PyTorch for input (1, 3, 40, 72)' in printed


PROG = 'tools/deployment/pytorch2onnx.py'


def test_cli_rejects_a_detector_without_backbone_only(tmp_path, capsys):
    config = 'configs/detection/maskrcnn_mvig2_ti.py'
    assert main([config, '--out', str(tmp_path / 'x.onnx')]) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f'{PROG}: error: maskrcnn_mvig2_ti.py builds a '
                           f'MaskRCNN: ')
    assert '--backbone-only' in line
    # --debug: the traceback of the ConfigError, then the same line
    assert main([config, '--out', str(tmp_path / 'x.onnx'), '--debug']) == 1
    err = capsys.readouterr().err
    assert 'Traceback (most recent call last)' in err
    assert 'mvig2_mm.errors.ConfigError: maskrcnn_mvig2_ti.py builds' in err
    assert err.strip().splitlines()[-1] == line


def test_cli_needs_config_or_arch(tmp_path):
    with pytest.raises(SystemExit):
        main(['--out', str(tmp_path / 'x.onnx')])


def test_cli_config_with_checkpoint_and_backbone_of_a_detector(tmp_path,
                                                               capsys):
    # a training-form checkpoint of the classifier config
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    cfg = Config.fromfile('configs/classification/mvig2_ti_in1k.py')
    cfg.model.teacher = None
    model = MODELS.build(cfg.model)
    torch.nn.init.normal_(model.head.fc.bias)
    checkpoint = tmp_path / 'ti.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)

    out = tmp_path / 'cls.onnx'
    assert main(['configs/classification/mvig2_ti_in1k.py', '--checkpoint',
                 str(checkpoint), '--shape', '64', '--out', str(out),
                 '--verify']) == 0
    # the same weights as the backbone of a detection config
    out = tmp_path / 'backbone.onnx'
    assert main(['configs/detection/maskrcnn_mvig2_ti.py', '--backbone-only',
                 '--checkpoint', str(checkpoint), '--shape', '64', '--out',
                 str(out), '--verify']) == 0
    printed = capsys.readouterr().out
    assert '-> logits; fixed input 1x3x64x64' in printed
    assert '-> stage0, stage1, stage2, stage3; fixed input' in printed


def test_cli_checkpoint_that_does_not_fit(tmp_path, capsys):
    checkpoint = tmp_path / 'bad.pth'
    torch.save(dict(state_dict={'backbone.stem.0.conv.weight':
                                torch.zeros(1)}), checkpoint)
    assert main(['--arch', 'ti', '--checkpoint', str(checkpoint), '--out',
                 str(tmp_path / 'x.onnx')]) == 1
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f'{PROG}: error: ') and 'does not fit' in line


def test_dynamo_exporter_backbone_dynamic_round_trip(tmp_path):
    """The torch.export-based exporter: exported at 64x64 (no stage shifts)
    and right at sizes that shift, batch 2 and K >= a stage's size."""
    pytest.importorskip('onnxscript',
                        reason=f'onnxscript is not installed ({INSTALL})')
    model = deploy_backbone()
    path = str(tmp_path / 'backbone.onnx')
    assert export(model, (64, 64), path, dynamic=True, dynamo=True) == [
        'stage0', 'stage1', 'stage2', 'stage3']
    report = verify(model, path, [(1, 64, 64), (2, 128, 96), (1, 40, 72),
                                  (1, 97, 131), (1, 33, 33)])
    assert all(diff <= 1e-4 for _, diff in report)


def test_cli_dynamo_needs_a_shape_it_can_make_dynamic(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(['--arch', 'ti', '--shape', '32', '--dynamic', '--dynamo',
              '--out', str(tmp_path / 'x.onnx')])
    assert 'at least 33' in capsys.readouterr().err


@pytest.mark.parametrize('dynamo', [False, True])
def test_mobilevig_classifier_dynamic_verify(tmp_path, capsys, dynamo):
    """MobileViG (v1): its number of graph shifts depends on the size; the
    exported graph computes it (both exporters), checked at several
    sizes."""
    if dynamo:
        pytest.importorskip('onnxscript',
                            reason=f'onnxscript is not installed ({INSTALL})')
    out = tmp_path / 'mobilevig.onnx'
    assert main(['--arch', 'ti', '--backbone', 'MobileViG', '--shape', '64',
                 '--dynamic', '--verify', '--out', str(out)]
                + (['--dynamo'] if dynamo else [])) == 0
    printed = capsys.readouterr().out
    for size in ('(2, 3, 64, 64)', '(1, 3, 97, 131)', '(1, 3, 256, 192)'):
        assert f'onnxruntime == PyTorch for input {size}' in printed


# ------------------------------------------------------- whole segmentor
SEG_CONFIG = 'configs/segmentation/semfpn_mvig2_ti.py'


@pytest.mark.parametrize('dynamo', [False, True])
def test_semantic_fpn_whole_segmentor_matches_mmseg(tmp_path, dynamo):
    """Semantic FPN-Ti, exported whole with dynamic sizes: per-pixel logits
    at the input's size equal mmseg's own inference (``encode_decode``) to
    1e-4 relative at three sizes, through onnxruntime."""
    if dynamo:
        pytest.importorskip('onnxscript',
                            reason=f'onnxscript is not installed ({INSTALL})')
    import onnxruntime as ort

    torch.manual_seed(0)
    model = build_export_model(SEG_CONFIG)
    path = str(tmp_path / 'semfpn.onnx')
    assert export(model, (64, 64), path, dynamic=True,
                  dynamo=dynamo) == ['seg_logits']
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    for hw in [(64, 96), (97, 131), (128, 128)]:
        x = torch.randn(1, 3, *hw)
        meta = dict(img_shape=hw, ori_shape=hw, pad_shape=hw)
        with torch.no_grad():
            expected = model.segmentor.encode_decode(x, [meta])
        out = torch.from_numpy(session.run(None, {'input': x.numpy()})[0])
        assert out.shape == (1, 150, *hw)
        torch.testing.assert_close(out, expected, rtol=1e-4,
                                   atol=1e-4 * expected.abs().max().item())


def test_cli_segmentor_with_a_published_file(published, tmp_path, capsys):
    """The published ADE20K layout (mmseg 0.30) exports as it is; a
    classifier's file for the segmentor config stops with one line."""
    ckpt = tmp_path / 'fpn_published.pth'
    published.whole_model(SEG_CONFIG, 'ti', ckpt, 'mmseg')
    out = tmp_path / 'seg.onnx'
    assert main([SEG_CONFIG, '--checkpoint', str(ckpt), '--shape', '64',
                 '--dynamic', '--verify', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert '-> seg_logits; dynamic batch, height and width' in printed
    assert 'onnxruntime == PyTorch for input (1, 3, 97, 131)' in printed

    wrong = tmp_path / 'mobilevigv2_ti.pth'
    published.imagenet('ti', wrong)
    assert main([SEG_CONFIG, '--checkpoint', str(wrong), '--out',
                 str(tmp_path / 'x.onnx')]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f'{PROG}: error: ') and 'it is a classification ' \
        'checkpoint and the config builds a segmentation model' in err


# ------------------------------------------------------- one-stage detector
def test_retinanet_whole_detector_matches_mmdet(tmp_path):
    """RetinaNet with MobileViGv2-Ti exported whole (its head's raw outputs,
    dynamic sizes; decoding and NMS by mmdet's own head outside the graph):
    on synthetic COCO images through the config's test pipeline, the
    detections equal mmdet's ``predict`` (matched boxes IoU >= 0.99, the
    same labels, scores to 1e-3)."""
    import onnxruntime as ort
    from mmdet.structures.bbox import bbox_overlaps
    from mmengine.dataset import Compose, pseudo_collate

    from mvig2_mm.testing.synthetic_coco import generate
    config = tmp_path / 'retinanet_ti.py'
    config.write_text(
        f"_base_ = '{REPO}/configs/detection/retinanet_mvig2_m_1x.py'\n"
        "model = dict(backbone=dict(arch='ti', init_cfg=None),\n"
        "             neck=dict(in_channels=[32, 64, 128, 256]))\n")
    torch.manual_seed(0)
    model = build_export_model(str(config))
    detector = model.detector
    path = str(tmp_path / 'retinanet.onnx')
    names = export(model, (128, 160), path, dynamic=True)
    assert names[0] == 'cls_score_0' and len(names) == 2 * model.levels

    root = tmp_path / 'coco'
    generate(str(root), num_train=0, num_val=2, image_size=(96, 128),
             min_size=16, max_size=40)
    from mmengine.config import Config
    pipeline = Compose(Config.fromfile(str(config)).test_pipeline)
    images = sorted((root / 'val').iterdir())
    batch = pseudo_collate([pipeline(dict(img_path=str(p), img_id=i))
                            for i, p in enumerate(images)])
    data = detector.data_preprocessor(batch, False)
    with torch.no_grad():
        expected = detector.predict(data['inputs'], data['data_samples'],
                                    rescale=True)
    session = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    outputs = session.run(None, {'input': data['inputs'].numpy()})
    got = detections_from_outputs(
        model, outputs, [s.metainfo for s in data['data_samples']])
    for want, have in zip(expected, got):
        want = want.pred_instances
        assert len(want) > 0 and len(have) == len(want)
        iou = bbox_overlaps(want.bboxes, have.bboxes)
        iou[want.labels[:, None] != have.labels[None, :]] = 0  # same label
        best, index = iou.max(dim=1)
        assert best.min() >= 0.99
        torch.testing.assert_close(have.scores[index], want.scores,
                                   atol=1e-3, rtol=0)
