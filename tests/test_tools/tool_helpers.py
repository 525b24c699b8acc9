"""Helpers of the tool tests: the demo configs pointed at a dataset, and a
tool run as a command."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'
CONFIGS = dict(
    det=REPO / 'configs/detection/demo/maskrcnn_mvig2_ti_shapes.py',
    seg=REPO / 'configs/segmentation/demo/semfpn_mvig2_ti_shapes.py',
    cls=REPO / 'configs/classification/demo/mvig2_ti_shapes.py')
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def data_options(task: str, root) -> list:
    """``--cfg-options`` that point a demo config at the dataset ``root``."""
    options = [f'{loader}.dataset.data_root={root}/' for loader in LOADERS]
    if task == 'det':
        ann_file = f'{root}/annotations/instances_val.json'
        options += [f'val_evaluator.ann_file={ann_file}',
                    f'test_evaluator.ann_file={ann_file}']
    elif task == 'cls':
        options += [f'{loader}.dataset.classes={root}/meta/classes.txt'
                    for loader in LOADERS]
    return options


def run_tool(tool: str, *args, timeout: float = 300, env: dict = None):
    """``python tools/TOOL ARGS`` from the repository, on one thread, with
    ``env`` added to the environment."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               **(env or {}))
    return subprocess.run([sys.executable, str(TOOLS / tool), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=timeout)


def assert_one_line_error(proc, expected: str) -> str:
    """Non-zero exit, no traceback, and a last stderr line (warnings may
    come before it) that holds ``expected``; returns that line."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'pkg_resources' not in proc.stderr, proc.stderr[-3000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert expected in last, proc.stderr[-3000:]
    assert last.startswith('tools/'), last
    return last


#: the stage channels of each family's smallest variant (the demo
#: detector's FPN input for it)
SMALLEST = {'MobileViGv2': ('ti', [32, 64, 128, 256]),
            'MobileViG': ('ti', [42, 84, 168, 256]),
            'GreedyViG': ('s', [48, 96, 192, 384])}


def family_options(family: str) -> list:
    """``--cfg-options`` for the demo detector with ``family``'s backbone."""
    arch, channels = SMALLEST[family]
    return [f'model.backbone.type={family}', f'model.backbone.arch={arch}',
            f'model.neck.in_channels={channels}'.replace(' ', '')]


def save_det_checkpoint(path, deploy_form: bool,
                        family: str = 'MobileViGv2'):
    """A checkpoint of the demo detector with ``family``'s backbone, in the
    training or the deploy form; returns ``path``."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import MODELS

    from mvig2_mm.models.utils import switch_to_deploy
    cfg = Config.fromfile(CONFIGS['det'])
    cfg.model.backbone.type = family
    cfg.model.backbone.arch, cfg.model.neck.in_channels = SMALLEST[family]
    with MODELS.switch_scope_and_registry('mmdet') as registry:
        model = registry.build(cfg.model)
    if deploy_form:
        switch_to_deploy(model.eval())
    torch.save(dict(state_dict=model.state_dict()), path)
    return path
