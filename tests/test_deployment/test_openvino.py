"""OpenVINO IR, float and 8-bit (NNCF), checked with OpenVINO's runtime."""
import pytest
import torch

INSTALL = 'pip install -e .[deploy]'
pytest.importorskip('openvino',
                    reason=f'openvino is not installed ({INSTALL})')
pytest.importorskip('nncf', reason=f'nncf is not installed ({INSTALL})')

from deploy_helpers import SIZE, deploy_backbone, top1_agreement  # noqa: E402

from mvig2_mm.deployment import build_export_model, openvino  # noqa: E402
from mvig2_mm.deployment.calibration import labelled_images  # noqa: E402
from mvig2_mm.deployment.checks import random_inputs  # noqa: E402
from tools.deployment.pytorch2openvino import main  # noqa: E402

pytestmark = pytest.mark.slow


def test_f32_ir_equals_pytorch_and_records_its_precision(tmp_path):
    model = deploy_backbone()
    path = openvino.convert(model, (SIZE, SIZE), str(tmp_path / 'ir'), 'f32')
    report = openvino.verify(model, path,
                             random_inputs([(1, SIZE, SIZE)] * 2))
    assert all(diff <= 1e-4 for _, diff, _ in report)
    assert openvino.runner(path).precision == 'f32'
    import openvino as ov
    ir = ov.Core().read_model(path)
    assert [sorted(o.get_names()) for o in ir.outputs] == [
        ['stage0'], ['stage1'], ['stage2'], ['stage3']]


# with the other test of the trained demo classifier: it is trained once
@pytest.mark.xdist_group('demo_classifier')
def test_int8_ir_keeps_the_demo_classifiers_top1(demo_classifier, tmp_path,
                                                 capsys):
    out_dir = str(tmp_path / 'cls_int8')
    assert main([demo_classifier.config, '--checkpoint',
                 demo_classifier.checkpoint, '--out', out_dir, '--shape',
                 str(SIZE), '--precision', 'f32', '--int8', '--calib', '16',
                 '--verify']) == 0
    out = capsys.readouterr().out
    assert '(8-bit, f32 float operators' in out
    assert 'OpenVINO (f32 on this CPU) vs PyTorch float' in out
    model = build_export_model(demo_classifier.config,
                               checkpoint=demo_classifier.checkpoint)
    labelled = labelled_images(demo_classifier.config, (SIZE, SIZE), 160)
    run = openvino.runner(f'{out_dir}/{openvino.FILE_NAME}.xml')
    assert top1_agreement(model, run, labelled) >= 95


def test_precision_is_required(capsys):
    with pytest.raises(SystemExit):
        main(['--arch', 'ti', '--out', 'ir'])
    assert '--precision' in capsys.readouterr().err


def test_int8_ir_of_the_reference_weights_keeps_the_features(reference,
                                                             tmp_path):
    """8 bits on the stand-in weights of ../shared/reference (MobileViGv2-Ti
    backbone, deploy form; NNCF calibrated on 8 random inputs at 96 px):
    on 2 other inputs every stage map keeps an SNR of at least 15 dB
    against the float model (20.5 dB measured), where a broken quantization
    (a wrong shift, a saturated range) falls to a few dB."""
    from mvig2_mm.deployment import StageMaps
    from mvig2_mm.models import MobileViGv2
    from mvig2_mm.weights import convert_reference_state_dict
    converted = convert_reference_state_dict(reference.state_dict('ti'))
    backbone = MobileViGv2('ti').eval()
    backbone.load_state_dict(
        {k[len('backbone.'):]: v for k, v in converted.items()
         if k.startswith('backbone.')}, strict=True)
    backbone.switch_to_deploy()
    model = StageMaps(backbone).eval()
    calibration = random_inputs([(1, SIZE, SIZE)] * 8)
    path = openvino.convert(model, (SIZE, SIZE), str(tmp_path / 'ir'), 'f32',
                            calibration)
    generator = torch.Generator().manual_seed(1)
    inputs = [torch.randn(1, 3, SIZE, SIZE, generator=generator)
              for _ in range(2)]
    report = openvino.verify(model, path, inputs, float('inf'))
    snrs = [snr for _, _, snr in report]
    assert min(snrs) >= 15, snrs
