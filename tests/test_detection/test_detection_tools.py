"""tools/train.py, tools/test.py and the launch scripts: argument handling
(the runner itself is mmengine's)."""
import importlib
import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'
CONFIG = REPO / 'configs' / 'detection' / 'maskrcnn_mvig2_ti.py'


def load_tool(name: str):
    spec = importlib.util.spec_from_file_location(f'mvig2_tool_{name}',
                                                  TOOLS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def train_tool():
    return load_tool('train')


@pytest.fixture(scope='module')
def test_tool():
    return load_tool('test')


def run_tool(*args, cwd=REPO):
    return subprocess.run([sys.executable, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


def assert_hook_accepts(registry, hook_cfg):
    """The hook class takes every argument the config gives it."""
    args = dict(hook_cfg)
    args.pop('_scope_', None)  # set by Config for mmdet:: bases
    hook_class = registry.get(args.pop('type'))
    inspect.signature(hook_class.__init__).bind(None, **args)


def assert_one_line_error(proc, expected: str):
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0]


# ------------------------------------------------------------ as commands
def test_train_missing_config(tmp_path):
    proc = run_tool(TOOLS / 'train.py', tmp_path / 'nope.py')
    assert_one_line_error(proc, f'config file not found: {tmp_path}/nope.py')


def test_test_missing_config(tmp_path):
    proc = run_tool(TOOLS / 'test.py', tmp_path / 'nope.py',
                    tmp_path / 'x.pth')
    assert_one_line_error(proc, 'config file not found')


def test_test_missing_checkpoint(tmp_path):
    proc = run_tool(TOOLS / 'test.py', CONFIG, tmp_path / 'latest.pth')
    assert_one_line_error(
        proc, f'checkpoint file not found: {tmp_path}/latest.pth')


@pytest.mark.parametrize('script', ['dist_train.sh', 'dist_test.sh',
                                    'slurm_train.sh', 'slurm_test.sh'])
def test_launch_scripts(script):
    path = TOOLS / script
    assert os.access(path, os.X_OK), f'{script} is not executable'
    assert subprocess.run(['bash', '-n', str(path)]).returncode == 0
    proc = subprocess.run([str(path)], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith('usage:')


@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_tools_are_executable(tool):
    assert os.access(TOOLS / tool, os.X_OK)


# ------------------------------------------------------------ in process
def test_train_options(train_tool, tmp_path, monkeypatch):
    monkeypatch.setattr(train_tool, 'get_device', lambda: 'cuda')
    args = train_tool.parse_args([
        str(CONFIG), '--amp', '--auto-scale-lr', '--resume', '--cfg-options',
        'train_dataloader.batch_size=4'])
    cfg = train_tool.build_config(args)
    assert cfg.work_dir == './work_dirs/maskrcnn_mvig2_ti'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
    assert cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.auto_scale_lr == dict(enable=True, base_batch_size=4)
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.train_dataloader.batch_size == 4
    assert cfg.launcher == 'none'

    ckpt = tmp_path / 'epoch_3.pth'
    ckpt.touch()
    cfg = train_tool.build_config(train_tool.parse_args(
        [str(CONFIG), '--resume', str(ckpt), '--work-dir', str(tmp_path)]))
    assert cfg.resume is True and cfg.load_from == str(ckpt)
    assert cfg.work_dir == str(tmp_path)
    assert cfg.optim_wrapper.type == 'OptimWrapper'
    assert cfg.auto_scale_lr.enable is False


def test_train_amp_needs_a_gpu(train_tool, monkeypatch):
    monkeypatch.setattr(train_tool, 'get_device', lambda: 'cpu')
    with pytest.raises(SystemExit) as exc:
        train_tool.build_config(train_tool.parse_args([str(CONFIG), '--amp']))
    assert '--amp needs a GPU' in str(exc.value.code)


def test_train_resume_from_missing_checkpoint(train_tool, tmp_path):
    args = train_tool.parse_args([str(CONFIG), '--resume',
                                  str(tmp_path / 'epoch_3.pth')])
    with pytest.raises(SystemExit) as exc:
        train_tool.build_config(args)
    assert 'checkpoint to resume from not found' in str(exc.value.code)


@pytest.mark.parametrize('tool_name', ['train', 'test'])
def test_distributed_without_cuda_uses_gloo(tool_name, train_tool, test_tool,
                                            tmp_path, monkeypatch):
    tool = train_tool if tool_name == 'train' else test_tool
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    ckpt = tmp_path / 'model.pth'
    ckpt.touch()
    argv = [str(CONFIG)] + ([str(ckpt)] if tool_name == 'test' else [])
    cfg = tool.build_config(tool.parse_args(argv + ['--launcher', 'pytorch']))
    assert cfg.launcher == 'pytorch'
    assert cfg.env_cfg.dist_cfg.backend == 'gloo'
    assert cfg.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert cfg.model_wrapper_cfg.device_ids is None

    cfg = tool.build_config(tool.parse_args(argv))  # not distributed
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'
    assert 'model_wrapper_cfg' not in cfg


def test_test_options_mmdet(test_tool, tmp_path):
    from mmdet.registry import HOOKS
    from mmdet.utils import register_all_modules
    ckpt = tmp_path / 'model.pth'
    ckpt.touch()
    cfg = test_tool.build_config(test_tool.parse_args([
        str(CONFIG), str(ckpt), '--show-dir', 'vis', '--out',
        str(tmp_path / 'preds.pkl'), '--work-dir', str(tmp_path)]))
    assert cfg.load_from == str(ckpt)
    hook = cfg.default_hooks.visualization
    assert hook.type == 'DetVisualizationHook'
    assert hook.draw is True and hook.test_out_dir == 'vis'
    metrics = cfg.test_evaluator
    assert [m.type for m in metrics] == ['CocoMetric', 'DumpDetResults']
    assert metrics[1].out_file_path == str(tmp_path / 'preds.pkl')
    register_all_modules()
    assert_hook_accepts(HOOKS, hook)


def test_test_out_must_be_pickle(test_tool, tmp_path):
    ckpt = tmp_path / 'model.pth'
    ckpt.touch()
    with pytest.raises(SystemExit) as exc:
        test_tool.build_config(test_tool.parse_args(
            [str(CONFIG), str(ckpt), '--out', 'preds.json']))
    assert '--out must be a .pkl file' in str(exc.value.code)


@pytest.mark.parametrize('scope, hook_type', [
    ('mmseg', 'SegVisualizationHook'), ('mmpretrain', 'VisualizationHook')])
def test_show_dir_in_other_scopes(scope, hook_type, test_tool, tmp_path):
    """The one test.py drives mmseg's and mmpretrain's visualization hooks."""
    pytest.importorskip(scope)
    config = tmp_path / f'{scope}_runtime.py'
    bases = [f'{scope}::_base_/default_runtime.py']
    if scope == 'mmseg':  # its default_hooks are in the schedules
        bases.append('mmseg::_base_/schedules/schedule_40k.py')
    config.write_text(f"_base_ = {bases!r}\n"
                      "test_evaluator = dict(type='Accuracy')\n")
    ckpt = tmp_path / 'model.pth'
    ckpt.touch()
    cfg = test_tool.build_config(test_tool.parse_args(
        [str(config), str(ckpt), '--show-dir', str(tmp_path / 'vis'),
         '--out', str(tmp_path / 'preds.pkl')]))
    hook = cfg.default_hooks.visualization
    assert hook.type == hook_type
    assert hook.interval == 1  # every image, as for detection
    if scope == 'mmseg':
        assert hook.draw is True
        assert cfg.visualizer.save_dir == str(tmp_path / 'vis')
    else:
        assert hook.enable is True and hook.out_dir == str(tmp_path / 'vis')
    assert [m.type for m in cfg.test_evaluator] == ['Accuracy', 'DumpResults']
    importlib.import_module(f'{scope}.utils').register_all_modules()
    assert_hook_accepts(importlib.import_module(f'{scope}.registry').HOOKS,
                        hook)
