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
