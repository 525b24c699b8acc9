#!/usr/bin/env python3
"""Train a MobileViGv2 detector, segmentor or classifier.

One launcher for the three tasks: the config's ``default_scope`` (set by the
mmdet / mmseg / mmpretrain base configs it inherits) selects the library, and
mmengine's ``Runner`` does the rest.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--auto-scale-lr] [--cfg-options KEY=VALUE ...]
    tools/dist_train.sh CONFIG GPUS [same options]
"""
import argparse
import datetime
import logging
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.device import get_device
from mmengine.logging import print_log
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

# registers MobileViGv2 and allow-lists mmengine checkpoints for torch.load
import mvig2_mm  # noqa: F401,E402
from mvig2_mm.utils.data_checks import (DataCheckError, check_data,
                                        describe_load_error)

PROG = 'tools/train.py'


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        prog=PROG, description='Train a model with a MobileViGv2 backbone '
        '(mmdet, mmseg or mmpretrain config)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir',
                        help='directory for logs and checkpoints '
                        '(default: ./work_dirs/CONFIG_NAME)')
    parser.add_argument(
        '--resume', nargs='?', const='auto', default=None, metavar='CKPT',
        help='resume training: without a value from the latest checkpoint in '
        'the work dir, or from the checkpoint CKPT (give CONFIG first)')
    parser.add_argument('--amp', action='store_true',
                        help='automatic mixed precision training')
    parser.add_argument(
        '--auto-scale-lr', action='store_true',
        help='scale the learning rate by (GPUs x batch size) / '
        'auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, as key=value pairs (e.g. '
        'train_dataloader.batch_size=4 or key="[a,b]"); no spaces inside a '
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
    """Distributed training on a machine without CUDA: gloo instead of NCCL,
    and a DDP wrapper without ``device_ids`` (mmengine's default names a
    GPU)."""
    if launcher == 'none' or torch.cuda.is_available():
        return
    if launcher != 'pytorch':
        fail(f'--launcher {launcher} needs CUDA; on CPU start the processes '
             f'with torchrun (tools/dist_train.sh)')
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
    print_log('CUDA is not available: distributed training on CPU with the '
              'gloo backend.', logger='current', level=logging.WARNING)


def build_config(args) -> Config:
    """Load the config and apply the command line to it."""
    if not osp.isfile(args.config):
        fail(f'config file not found: {args.config}')
    if args.resume not in (None, 'auto') and not (
            is_url(args.resume) or osp.isfile(args.resume)):
        fail(f'checkpoint to resume from not found: {args.resume}')

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

    if args.amp:
        wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in the config.',
                      logger='current', level=logging.WARNING)
        elif get_device() == 'cpu':
            fail("--amp needs a GPU (mmengine's AmpOptimWrapper does not run "
                 'on CPU)')
        elif wrapper != 'OptimWrapper':
            fail(f'--amp needs optim_wrapper.type OptimWrapper, the config '
                 f'has {wrapper}')
        else:
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'

    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'base_batch_size' not in scale:
            fail('--auto-scale-lr needs auto_scale_lr.base_batch_size in the '
                 'config')
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    use_gloo_without_cuda(cfg, args.launcher)
    return cfg


def check_inputs(cfg: Config) -> None:
    """Stop with one line when the data the run reads is missing or broken
    (cheap checks: see ``mvig2_mm.utils.data_checks``)."""
    loaders, evaluators = ['train_dataloader'], []
    if cfg.get('val_cfg') and cfg.get('val_evaluator'):  # validates too
        loaders.append('val_dataloader')
        evaluators.append('val_evaluator')
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
        runner.train()
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
