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


def run_tool(tool: str, *args, timeout: float = 300):
    """``python tools/TOOL ARGS`` from the repository, on one thread."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')
    return subprocess.run([sys.executable, str(TOOLS / tool), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=timeout)


def assert_one_line_error(proc, expected: str) -> str:
    """Non-zero exit, no traceback, and a last stderr line (warnings may
    come before it) that holds ``expected``; returns that line."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert expected in last, proc.stderr[-3000:]
    assert last.startswith('tools/'), last
    return last
