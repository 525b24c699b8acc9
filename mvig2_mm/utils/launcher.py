"""What ``tools/train.py`` and ``tools/test.py`` share.

Loading a config with the usual command-line overrides, running
distributed on a machine without CUDA (gloo; mmengine assumes a GPU), the
pre-flight data checks, and running the Runner so that a file the pipeline
cannot read ends the run with one line instead of a traceback.
"""
import argparse
import datetime
import logging
import os
import os.path as osp
import sys
from typing import List, NoReturn

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from .data_checks import DataCheckError, check_data, describe_load_error


def fail(prog: str, message: str) -> NoReturn:
    """Exit with a one-line error (no traceback)."""
    sys.exit(f'{prog}: error: {message}')


def is_url(path: str) -> bool:
    return '://' in path


def add_common_arguments(parser: argparse.ArgumentParser,
                         example_option: str) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    parser.add_argument('--work-dir',
                        help='directory for logs and outputs '
                        '(default: ./work_dirs/CONFIG_NAME)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help=f'override config settings, as key=value pairs (e.g. '
        f'{example_option}=4 or key="[a,b]"); no spaces inside a value')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'],
                        help='job launcher')
    # torch.distributed.launch passes --local-rank; torchrun sets LOCAL_RANK
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)


def parse_with_common(parser: argparse.ArgumentParser, argv=None):
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_config(args, prog: str) -> Config:
    """Load ``args.config`` and apply ``--cfg-options``, ``--launcher`` and
    the work dir (command line > config > ./work_dirs/CONFIG_NAME)."""
    if not osp.isfile(args.config):
        fail(prog, f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def use_gloo_without_cuda(cfg: Config, prog: str, dist_script: str) -> None:
    """Distributed runs on a machine without CUDA: gloo instead of NCCL, and
    a DDP wrapper without ``device_ids`` (mmengine's default names a GPU)."""
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        fail(prog, f'--launcher {cfg.launcher} needs CUDA; on CPU start the '
             f'processes with torchrun ({dist_script})')
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def _init_cpu_process_group(cfg: Config, activity: str) -> None:
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
    print_log(f'CUDA is not available: distributed {activity} on CPU with '
              f'the gloo backend.', logger='current', level=logging.WARNING)


def run(cfg: Config, prog: str, mode: str, loaders: List[str],
        evaluators: List[str]) -> None:
    """Check the data, build the Runner and call ``runner.<mode>()``.

    Args:
        cfg (Config): The complete config.
        prog (str): The tool's name, for error messages.
        mode (str): ``'train'`` or ``'test'``.
        loaders (list[str]): Dataloader keys whose data is checked first.
        evaluators (list[str]): Evaluator keys whose files are checked.
    """
    try:
        check_data(cfg, loaders, evaluators)
    except DataCheckError as e:
        fail(prog, str(e))
    _init_cpu_process_group(cfg, {'train': 'training'}.get(mode, 'testing'))
    try:
        if 'runner_type' in cfg:
            init_default_scope(cfg.get('default_scope', 'mmengine'))
            runner = RUNNERS.build(cfg)
        else:
            runner = Runner.from_cfg(cfg)
        getattr(runner, mode)()
    except Exception as e:  # a file the pipeline cannot read: one line
        message = describe_load_error(e)
        if message is None:
            raise
        fail(prog, message)
    finally:
        # a gloo group left to the interpreter's exit aborts the process
        # ("terminate called without an active exception")
        if torch.distributed.is_initialized():
            try:  # no rank leaves while another still talks to the group
                torch.distributed.barrier()
            except RuntimeError:
                pass  # a peer is already gone: nothing left to wait for
            torch.distributed.destroy_process_group()
