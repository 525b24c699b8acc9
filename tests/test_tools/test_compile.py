"""``--compile``: tools/test.py evaluates with the model compiled by
``torch.compile`` (mmengine's ``compile`` config key), as a user runs it."""
import re

import pytest
import torch
from mmengine.config import Config

from tool_helpers import CONFIGS, data_options, run_tool

pytestmark = pytest.mark.slow  # compiling on CPU takes about a minute


def test_test_py_compile_prints_the_metric(ade_root, tmp_path):
    from mmengine.registry import MODELS
    cfg = Config.fromfile(CONFIGS['seg'])
    with MODELS.switch_scope_and_registry('mmseg') as registry:
        model = registry.build(cfg.model)
    checkpoint = tmp_path / 'semfpn.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    proc = run_tool('test.py', CONFIGS['seg'], checkpoint, '--compile',
                    '--work-dir', tmp_path / 'work', '--cfg-options',
                    *data_options('seg', ade_root),
                    'test_dataloader.dataset.indices=2', timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout
    assert 'The model is compiled with torch.compile, its weights frozen: ' \
        'the first batches are slow while it compiles.' in log
    assert 'Iter(test) [2/2]' in log
    miou = re.search(r'mIoU: (-?[\d.]+)', log)
    assert miou and 0 <= float(miou.group(1)) <= 100, log[-3000:]
