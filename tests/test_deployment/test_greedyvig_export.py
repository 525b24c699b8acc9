"""GreedyViG exported: ONNX with dynamic sizes is right at sizes it was not
exported at (the graph computes the shifts, their count, the half-way
partners and the threshold from the size), with both exporters; the FLOPs
tool counts it."""
import pytest
import torch

from mvig2_mm.deployment.models import build_export_model
from mvig2_mm.deployment.onnx import export, verify

pytest.importorskip('onnxruntime')


@pytest.mark.parametrize('dynamo', [False, True])
def test_classifier_dynamic_onnx_at_three_other_sizes(tmp_path, dynamo):
    torch.manual_seed(0)
    model = build_export_model(arch='s', backbone='GreedyViG')
    path = str(tmp_path / 'greedyvig_s.onnx')
    export(model, (64, 64), path, dynamic=True, dynamo=dynamo)
    # batch 2; maps smaller than K (32 px: 8x8 in stage 0 with K = 8);
    # sizes that are not multiples of 32
    report = verify(model, path, [(2, 64, 64), (1, 40, 72), (1, 97, 131),
                                  (1, 224, 224)])
    assert [shape for shape, _ in report] == [
        (2, 3, 64, 64), (1, 3, 40, 72), (1, 3, 97, 131), (1, 3, 224, 224)]


def test_backbone_dynamic_onnx(tmp_path):
    torch.manual_seed(0)
    model = build_export_model(arch='s', backbone='GreedyViG',
                               backbone_only=True)
    path = str(tmp_path / 'greedyvig_s_backbone.onnx')
    export(model, (96, 96), path, dynamic=True)
    verify(model, path, [(1, 32, 32), (2, 61, 50), (1, 128, 192)])


def test_core_ml_classifier_converts(tmp_path, capsys):
    """The same tool as for the other families (its spec checked; running a
    Core ML prediction needs macOS)."""
    pytest.importorskip('coremltools', reason='coremltools is not installed '
                        'or does not import here (pip install -e .[deploy])')
    from tools.deployment.pytorch2coreml import main
    out = tmp_path / 'greedyvig_s.mlpackage'
    assert main(['--arch', 's', '--backbone', 'GreedyViG', '--shape', '64',
                 '--input', 'tensor', '--out', str(out)]) == 0
    printed = capsys.readouterr().out
    assert "inputs {'input': [1, 3, 64, 64]}" in printed
    assert "outputs {'logits': [1, 1000]}" in printed


def test_flops_of_every_variant(capsys):
    """get_flops counts the classifiers as the reference's comments give
    them (12.0 M / 1.6 G, 21.9 M / 3.2 G, 30.9 M / 5.2 G MACs)."""
    from tools.analysis_tools.get_flops import main
    for arch, params, macs in (('s', 11.98, 1.60), ('m', 21.93, 3.15),
                               ('b', 30.91, 5.12)):
        assert main(['--arch', arch, '--backbone', 'GreedyViG',
                     '--shape', '224']) == 0
        row = [line for line in capsys.readouterr().out.splitlines()
               if line.startswith('| classifier')][0].split(' | ')
        assert float(row[2]) == params
        assert float(row[3].strip(' |')) == pytest.approx(macs, abs=0.005)
