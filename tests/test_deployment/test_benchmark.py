"""tools/analysis_tools/benchmark.py --quick: every table, in seconds."""
import pytest

from tools.analysis_tools.benchmark import main


def test_quick_run_prints_every_table(capsys):
    assert main(['--quick', '--threads', '1']) == 0
    out = capsys.readouterr().out
    assert out.startswith('Machine: ')
    for title in ('### 1. Classifiers', '### 2. Achieved GFLOP/s',
                  '### 3. Mask R-CNN', '### 4. Backbone training step',
                  '### 5. Backbone BatchNorm trained', '### 6. ONNX Runtime'):
        assert title in out
    for row in ('| MobileViGv2-Ti | train | 5.70 |',
                '| MobileViGv2-Ti | deploy |', '| MobileOne-S1 | deploy |',
                '| MobileViG-Ti | train | 5.27 |', '| MobileViG-Ti | deploy |',
                '| Mask R-CNN MobileViGv2-M | deploy backbone |',
                '| Mask R-CNN ResNet-50 | train |',
                '| MobileViGv2-Ti | 2 x 64x64 | True |',
                '| MobileViGv2-Ti | 2 x 64x64 | trained |',
                '| MobileViGv2-Ti | 2 x 64x64 | frozen + Tune mode |',
                '| Mask R-CNN MobileViGv2-M | 1 x 128x128 | frozen |',
                '| Mask R-CNN MobileViGv2-M | 1 x 128x128 | frozen + Tune '
                'mode |'):
        assert row in out, row
    onnxruntime = out[out.index('### 6. ONNX Runtime'):]
    for row in ('| MobileViGv2-Ti | 1 x 64x64 |',
                '| MobileViGv2-Ti | 2 x 64x64 |',
                '| Semantic FPN MobileViGv2-M | 1 x 64x64 |'):
        assert row in onnxruntime, row


def test_tables_option_selects(capsys):
    assert main(['--quick', '--threads', '1', '--tables', '4']) == 0
    out = capsys.readouterr().out
    assert '### 4.' in out and '### 1.' not in out and '### 3.' not in out


@pytest.mark.slow
def test_compiled_deploy_form_beside_eager(capsys):
    """--compile adds the compiled deploy form, timed with the eager forms,
    with its compile time and its speed against the training form."""
    assert main(['--quick', '--threads', '1', '--tables', '1', '--compile',
                 '--families', 'MobileViGv2', '--no-baselines']) == 0
    out = capsys.readouterr().out
    rows = [line.split(' | ') for line in out.splitlines()
            if line.startswith('| MobileViGv2-Ti |')]
    assert [row[1] for row in rows] == ['train', 'deploy', 'compiled']
    compiled = rows[2]
    assert float(compiled[6]) > 0  # compile seconds
    assert compiled[7].endswith('x')  # speed vs the training form


@pytest.mark.slow
@pytest.mark.xdist_group('demo_classifier')  # with its other tests
def test_every_runtime_table_with_a_trained_classifiers_top1(
        demo_classifier, capsys):
    """--tables 7: each runtime's row with its speed against eager, file
    size, SNR and the trained classifier's top-1 (with its agreement with
    eager), an 8-bit runtime among them."""
    pytest.importorskip('openvino')
    pytest.importorskip('nncf')
    assert main(['--quick', '--threads', '1', '--tables', '7', '--runtimes',
                 'eager', 'openvino-int8', '--classifier',
                 demo_classifier.config, demo_classifier.checkpoint]) == 0
    out = capsys.readouterr().out
    rows = {line.split(' | ')[0][2:]: line.strip(' |').split(' | ')
            for line in out.splitlines() if line.startswith('| ')}
    assert list(rows)[1:] == ['PyTorch eager', 'OpenVINO 8-bit (NNCF)']
    eager, int8 = rows['PyTorch eager'], rows['OpenVINO 8-bit (NNCF)']
    assert (eager[1], int8[1]) == ('32', '8')
    assert eager[4] == '1.00x / 1.00x' and int8[4].endswith('x')
    assert eager[5] == '-' and float(int8[5]) > 0  # MB of the IR
    assert eager[7] == 'inf' and 10 < float(int8[7]) < 100  # SNR, dB
    top1, agreement = eager[8].split()
    assert agreement == '(100.0)' and 0 <= float(top1) <= 100
    top1, agreement = int8[8].split()
    assert float(agreement.strip('()')) >= 75  # 8 images: most agree


@pytest.mark.slow
def test_every_runtime_table_with_a_segmentors_miou(tmp_path, capsys):
    """--segmentor adds each runtime's mIoU on the segmentor's validation
    images: ONNX Runtime's equals eager's (float32: every pixel agrees)."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from mvig2_mm.testing.synthetic_ade20k import generate
    data_root = str(tmp_path / 'shapes_ade')
    generate(data_root, num_train=2, num_val=6, image_size=(64, 64),
             min_size=12, max_size=32)
    cfg = Config.fromfile(
        'configs/segmentation/demo/semfpn_mvig2_ti_shapes.py')
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = data_root
    config = str(tmp_path / 'semfpn.py')
    cfg.dump(config)
    init_default_scope('mmseg')
    torch.manual_seed(0)
    checkpoint = str(tmp_path / 'semfpn.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict()},
               checkpoint)
    assert main(['--quick', '--threads', '1', '--tables', '7', '--runtimes',
                 'eager', 'onnxruntime', '--segmentor', config, checkpoint,
                 '--segmentor-size', '64', '--val-images', '6']) == 0
    out = capsys.readouterr().out
    lines = [[cell.strip() for cell in line.strip().strip('|').split('|')]
             for line in out.splitlines() if line.startswith('| ')]
    assert lines[0][-2] == ('trained semfpn.py mIoU % (pixel agreement '
                            'with eager)')
    rows = {line[0]: line for line in lines[1:]}
    eager, onnxruntime = rows['PyTorch eager'], rows['ONNX Runtime']
    miou, agreement = eager[-2].split()
    assert agreement == '(100.0)' and 0 <= float(miou) <= 100
    assert onnxruntime[-2] == eager[-2]
