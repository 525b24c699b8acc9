"""ExecuTorch export for XNNPACK, float32 and 8-bit, checked with
ExecuTorch's runtime."""
import sys

import pytest

INSTALL = 'pip install -e .[deploy]'
pytest.importorskip('executorch',
                    reason=f'executorch is not installed ({INSTALL})')

from deploy_helpers import SIZE, deploy_backbone, top1_agreement  # noqa: E402

from mvig2_mm.deployment import build_export_model  # noqa: E402
from mvig2_mm.deployment import executorch  # noqa: E402
from mvig2_mm.deployment.calibration import labelled_images  # noqa: E402
from mvig2_mm.deployment.checks import random_inputs  # noqa: E402
from tools.deployment.pytorch2executorch import PROG, main  # noqa: E402

pytestmark = pytest.mark.slow


def test_float32_program_equals_pytorch_whole_in_xnnpack(tmp_path):
    model = deploy_backbone()
    path = str(tmp_path / 'backbone.pte')
    delegation = executorch.export(model, (SIZE, SIZE), path)
    assert (delegation.subgraphs, delegation.elsewhere) == (1, {})
    report = executorch.verify(model, path,
                               random_inputs([(1, SIZE, SIZE)] * 2))
    assert [shape for shape, _, _ in report] == [(1, 3, SIZE, SIZE)] * 2
    assert all(diff <= 1e-4 for _, diff, _ in report)


# with the other test of the trained demo classifier: it is trained once
@pytest.mark.xdist_group('demo_classifier')
def test_int8_program_keeps_the_demo_classifiers_top1(demo_classifier,
                                                      tmp_path, capsys):
    path = str(tmp_path / 'cls_int8.pte')
    assert main([demo_classifier.config, '--checkpoint',
                 demo_classifier.checkpoint, '--out', path, '--shape',
                 str(SIZE), '--int8', '--calib', '16', '--verify']) == 0
    out = capsys.readouterr().out
    assert 'calibrating on 16 images of the training set' in out
    assert '(8-bit, ' in out and f'input 1x3x{SIZE}x{SIZE}' in out
    assert 'ExecuTorch vs PyTorch float for input (1, 3, 96, 96)' in out
    model = build_export_model(demo_classifier.config,
                               checkpoint=demo_classifier.checkpoint)
    labelled = labelled_images(demo_classifier.config, (SIZE, SIZE), 160)
    assert len(labelled) == 160
    assert top1_agreement(model, executorch.runner(path), labelled) >= 95


def test_int8_needs_a_config(capsys):
    with pytest.raises(SystemExit):
        main(['--arch', 'ti', '--out', 'x.pte', '--int8'])
    assert '--int8 needs a config' in capsys.readouterr().err


def test_a_missing_executorch_is_one_line_with_the_install_command(
        monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'executorch', None)  # not importable
    assert main(['--arch', 'ti', '--out', 'x.pte']) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f'{PROG}: error: executorch is not installed: pip install '
                   '-e .[deploy] (or pip install executorch, with your '
                   'torch kept)')
