"""Core ML conversion of the deploy-form classifier (spec checked; running a
prediction needs macOS)."""
import pytest

pytest.importorskip('coremltools', reason='coremltools is not installed or '
                    'does not import here (pip install -e .[deploy])')

from tools.deployment.pytorch2coreml import main  # noqa: E402


def test_classifier_converts_with_the_right_spec(tmp_path, capsys):
    out = tmp_path / 'ti.mlpackage'
    assert main(['--arch', 'ti', '--shape', '64', '96', '--out',
                 str(out)]) == 0
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
                 '--out', str(out)]) == 0
    assert "outputs {'logits': [1, 1000]}" in capsys.readouterr().out
