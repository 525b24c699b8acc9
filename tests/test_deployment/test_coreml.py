"""Core ML conversion of the deploy-form classifier (spec checked; running a
prediction needs macOS)."""
import json

import pytest
import torch

pytest.importorskip('coremltools', reason='coremltools is not installed or '
                    'does not import here (pip install -e .[deploy])')

from tools.deployment.pytorch2coreml import main  # noqa: E402


def test_classifier_converts_with_the_right_spec(tmp_path, capsys):
    out = tmp_path / 'ti.mlpackage'
    assert main(['--arch', 'ti', '--shape', '64', '96', '--input', 'tensor',
                 '--out', str(out)]) == 0
    assert (out / 'Manifest.json').is_file()
    printed = capsys.readouterr().out
    assert "inputs {'input': [1, 3, 64, 96]}" in printed
    assert "outputs {'logits': [1, 1000]}" in printed


def test_out_must_be_an_mlpackage(tmp_path):
    with pytest.raises(SystemExit):
        main(['--arch', 'ti', '--out', str(tmp_path / 'ti.mlmodel')])


def test_mobilevig_classifier_converts(tmp_path, capsys):
    out = tmp_path / 'mobilevig_ti.mlpackage'
    assert main(['--arch', 'ti', '--backbone', 'MobileViG', '--shape', '64',
                 '--input', 'tensor', '--out', str(out)]) == 0
    assert "outputs {'logits': [1, 1000]}" in capsys.readouterr().out


def spec_text(path):
    import coremltools as ct
    return ct.models.MLModel(str(path), skip_model_load=True).get_spec()


def test_classifier_as_an_image_model(tmp_path, capsys):
    """What an app consumes: an RGB picture in, the class label and the
    scores of the 1000 ImageNet classes out, metadata stated."""
    out = tmp_path / 'ti.mlpackage'
    assert main(['--arch', 'ti', '--shape', '64', '--out', str(out)]) == 0
    assert "inputs {'image': ['RGB', 64, 64]}" in capsys.readouterr().out
    spec = spec_text(out)
    assert spec.description.predictedFeatureName == 'classLabel'
    assert 'tench' in str(spec.mlProgram)  # the class names are attached
    # the image's scale and per-channel bias: the program's first ops
    function = spec.mlProgram.functions['main']
    consts = {op.outputs[0].name: list(op.attributes['val'].immediateValue
                                       .tensor.floats.values)
              for op in function.block_specializations[function.opset]
              .operations[:6] if op.type == 'const'}
    std_mean = sum([58.395, 57.12, 57.375]) / 3
    assert consts['image__scaled___y_0'] == pytest.approx([1 / std_mean])
    assert consts['image__biased___y_0'] == pytest.approx(
        [-m / std_mean for m in (123.675, 116.28, 103.53)], rel=1e-5)
    meta = spec.description.metadata
    assert meta.license == 'Apache-2.0' and 'mvig2_mm' in meta.author
    info = dict(meta.userDefined)
    assert info['input_size'] == '64x64'
    assert info['compute_precision'] == 'float16'
    assert json.loads(info['mean']) == [123.675, 116.28, 103.53]


def test_segmentor_as_an_image_model(tmp_path, capsys):
    out = tmp_path / 'semfpn.mlpackage'
    assert main(['configs/segmentation/semfpn_mvig2_ti.py', '--shape', '64',
                 '96', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert "inputs {'image': ['RGB', 64, 96]}" in printed
    assert "outputs {'seg_logits': [1, 150, 64, 96]}" in printed
    info = dict(spec_text(out).description.metadata.userDefined)
    assert json.loads(info['classes'])[:2] == ['wall', 'building']


def test_normalisation_folded_into_scale_bias_and_first_conv():
    """Core ML computes pixel * scale + bias[c]; the per-channel rest of
    1 / std lives in the first conv: the same logits as the normalised
    input gives the original model."""
    from mvig2_mm.deployment import build_export_model
    from mvig2_mm.deployment.coreml import (fold_channel_scale,
                                            image_scale_and_bias)
    mean, std = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]
    torch.manual_seed(0)
    model = build_export_model(arch='ti')
    scale, bias, rest = image_scale_and_bias(mean, std)
    folded = fold_channel_scale(model, rest)
    pixels = torch.rand(1, 3, 64, 64) * 255
    core_ml_input = pixels * scale + torch.tensor(bias).reshape(1, 3, 1, 1)
    normalised = (pixels - torch.tensor(mean).reshape(1, 3, 1, 1)) / \
        torch.tensor(std).reshape(1, 3, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(folded(core_ml_input), model(normalised),
                                   rtol=1e-4, atol=1e-4)


def test_image_input_is_not_for_a_backbone(tmp_path):
    with pytest.raises(SystemExit):
        main(['--arch', 'ti', '--backbone-only', '--input', 'image',
              '--out', str(tmp_path / 'b.mlpackage')])
