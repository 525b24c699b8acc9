#!/usr/bin/env python3
"""Test (and evaluate) a MobileViGv2 detector, segmentor or classifier.

One launcher for the three tasks: the config's ``default_scope`` (set by the
mmdet / mmseg / mmpretrain base configs it inherits) selects the library, and
mmengine's ``Runner`` does the rest.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.pkl]
        [--show-dir DIR] [--cfg-options KEY=VALUE ...]
    tools/dist_test.sh CONFIG CHECKPOINT GPUS [same options]
"""
import argparse
import datetime
import logging
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

# registers MobileViGv2 and allow-lists mmengine checkpoints for torch.load
import mvig2_mm  # noqa: F401,E402
from mvig2_mm.utils.data_checks import (DataCheckError, check_data,
                                        describe_load_error)

PROG = 'tools/test.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description='Test a model with a MobileViGv2 backbone '
        '(mmdet, mmseg or mmpretrain config)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file (path or URL)')
    parser.add_argument('--work-dir', help='directory for logs and metrics '
                        '(default: ./work_dirs/CONFIG_NAME)')
    parser.add_argument('--out', help='dump the predictions to this .pkl file')
    parser.add_argument(
        '--show-dir', help='save every test image with its predictions drawn '
        'on it (detection: to WORK_DIR/TIMESTAMP/SHOW_DIR, segmentation: '
        'SHOW_DIR/vis_data/vis_image, classification: SHOW_DIR)')
    parser.add_argument('--show', action='store_true',
                        help='show the predictions in a window')
    parser.add_argument('--wait-time', type=float, default=2,
                        help='seconds each shown image stays up')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, as key=value pairs (e.g. '
        'test_dataloader.batch_size=4 or key="[a,b]"); no spaces inside a '
        'value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def fail(message: str) -> None:
    """Exit with a one-line error (no traceback)."""
    sys.exit(f'{PROG}: error: {message}')


def is_url(path: str) -> bool:
    return '://' in path


def use_gloo_without_cuda(cfg: Config, launcher: str) -> None:
    """Distributed testing on a machine without CUDA: gloo instead of NCCL,
    and a DDP wrapper without ``device_ids`` (mmengine's default names a
    GPU)."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        fail(f'--launcher {launcher} needs CUDA; on CPU start the processes '
             f'with torchrun (tools/dist_test.sh)')
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def init_cpu_process_group(cfg: Config) -> None:
    """Join the process group here when there is no CUDA: mmengine's
    ``init_dist`` calls ``torch.cuda.set_device`` first, which fails."""
    if cfg.launcher == 'none' or torch.cuda.is_available() or \
            torch.distributed.is_initialized():
        return
    dist_cfg = dict(cfg.env_cfg.dist_cfg)
    timeout = dist_cfg.pop('timeout', None)
    if timeout is not None:
        dist_cfg['timeout'] = datetime.timedelta(seconds=timeout)
    torch.distributed.init_process_group(**dist_cfg)
    print_log('CUDA is not available: distributed testing on CPU with the '
              'gloo backend.', logger='current', level=logging.WARNING)


def enable_visualization(cfg: Config, args) -> None:
    """Turn the config's visualization hook on, the way each library's own
    ``tools/test.py`` does (their hooks take different arguments)."""
    hook = cfg.get('default_hooks', {}).get('visualization')
    if hook is None:
        fail('--show/--show-dir need default_hooks.visualization in the '
             'config')
    scope = cfg.get('default_scope')
    if scope == 'mmpretrain':  # VisualizationHook: images go to out_dir
        hook.enable = True
        hook.interval = 1
        if args.show_dir:
            hook.out_dir = args.show_dir
    elif scope == 'mmseg':  # SegVisualizationHook: through the visualizer
        hook.draw = True
        hook.interval = 1
        if args.show_dir:
            cfg.visualizer.save_dir = args.show_dir
    else:  # DetVisualizationHook: WORK_DIR/TIMESTAMP/test_out_dir
        hook.draw = True
        if args.show_dir:
            hook.test_out_dir = args.show_dir
    if args.show:
        hook.show = True
        hook.wait_time = args.wait_time


def add_dump_metric(cfg: Config, out: str) -> None:
    """Also dump the raw predictions of the test set to ``out``."""
    metric = dict(type='DumpResults', out_file_path=out)
    if cfg.get('default_scope') == 'mmdet':
        metric['type'] = 'DumpDetResults'  # masks as RLE, as mmdet's tool

    def listed(metrics):
        return list(metrics) if isinstance(metrics, (list, tuple)) \
            else [metrics]

    evaluator = cfg.test_evaluator
    if isinstance(evaluator, dict) and 'metrics' in evaluator:  # Evaluator
        evaluator.metrics = listed(evaluator.metrics) + [metric]
    else:
        cfg.test_evaluator = listed(evaluator) + [metric]


def build_config(args) -> Config:
    """Load the config and apply the command line to it."""
    if not osp.isfile(args.config):
        fail(f'config file not found: {args.config}')
    if not (is_url(args.checkpoint) or osp.isfile(args.checkpoint)):
        fail(f'checkpoint file not found: {args.checkpoint}')
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        fail(f'--out must be a .pkl file, got {args.out}')

    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)

    # work_dir: command line > config > ./work_dirs/CONFIG_NAME
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.out is not None:
        add_dump_metric(cfg, args.out)
    use_gloo_without_cuda(cfg, args.launcher)
    return cfg


def check_inputs(cfg: Config) -> None:
    """Stop with one line when the data the run reads is missing or broken
    (cheap checks: see ``mvig2_mm.utils.data_checks``)."""
    loaders, evaluators = ['test_dataloader'], ['test_evaluator']
    try:
        check_data(cfg, loaders, evaluators)
    except DataCheckError as e:
        fail(str(e))


def main(argv=None):
    cfg = build_config(parse_args(argv))
    check_inputs(cfg)
    init_cpu_process_group(cfg)
    if 'runner_type' in cfg:
        init_default_scope(cfg.get('default_scope', 'mmengine'))
        runner = RUNNERS.build(cfg)
    else:
        runner = Runner.from_cfg(cfg)
    try:
        runner.test()
    except Exception as e:  # a file the pipeline cannot read: one line
        message = describe_load_error(e)
        if message is None:
            raise
        fail(message)
    finally:
        # a gloo group left to the interpreter's exit aborts the process
        # ("terminate called without an active exception")
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


if __name__ == '__main__':
    main()
