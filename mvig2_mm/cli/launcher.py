"""What ``tools/train.py``, ``tools/test.py`` and ``tools/infer.py`` share.

Loading a config with the usual command-line overrides, running
distributed on a machine without CUDA (gloo; mmengine assumes a GPU), the
pre-flight checks (datasets, pretrained and ``load_from`` checkpoints), and
running the Runner so that a bad input ends the run with one line instead of
a traceback: a file the pipeline cannot read, a model that cannot be built,
a checkpoint that is missing, unreadable or does not fit the model.
"""
import argparse
import datetime
import gc
import logging
import os
import os.path as osp
import sys
from typing import Iterator, List, NoReturn, Optional, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.logging import print_log
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from ..weights import CheckpointMismatchError
from .checkpoints import StrictLoadHook, first_line, read_checkpoint
from .data_checks import DataCheckError, check_data, describe_load_error

#: Errors of a config that the Runner meets while it builds the model (an
#: unknown arch or type, a bad argument): reported in one line.
BUILD_ERRORS = (ValueError, TypeError, KeyError, AssertionError)


def fail(prog: str, message: str) -> NoReturn:
    """Exit with a one-line error (no traceback)."""
    sys.exit(f'{prog}: error: {message}')


def is_url(path: str) -> bool:
    return '://' in path


class StrictDictAction(DictAction):
    """mmengine's ``DictAction`` (``KEY=VALUE`` pairs) that answers a pair
    without ``=VALUE`` with one line instead of a traceback."""

    def __call__(self, parser, namespace, values, option_string=None):
        for pair in values:
            if '=' not in pair or not pair.split('=', 1)[0]:
                parser.exit(2, f'{parser.prog}: error: {option_string} takes '
                            f'KEY=VALUE pairs, got {pair!r} (e.g. '
                            f'{option_string} model.backbone.arch=m)\n')
        super().__call__(parser, namespace, values, option_string)


def tool_parser(prog: str, description: str,
                config_help: str) -> argparse.ArgumentParser:
    """The argument parser of a launcher, with its config argument."""
    parser = argparse.ArgumentParser(
        prog=prog, description=f'{description} a model with a MobileViG '
        f'backbone (mmdet, mmseg or mmpretrain config)')
    parser.add_argument('config', help=config_help)
    return parser


def add_common_arguments(parser: argparse.ArgumentParser,
                         example_option: str) -> None:
    """``--work-dir``, ``--cfg-options``, ``--launcher``, ``--local-rank``."""
    parser.add_argument('--work-dir',
                        help='directory for logs and outputs '
                        '(default: ./work_dirs/CONFIG_NAME)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=StrictDictAction,
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


def read_config(path: str, cfg_options: Optional[dict],
                prog: str) -> Config:
    """Load the config file ``path`` and apply ``--cfg-options``."""
    if not osp.isfile(path):
        fail(prog, f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_config(args, prog: str) -> Config:
    """Load ``args.config`` and apply ``--cfg-options``, ``--launcher`` and
    the work dir (command line > config > ./work_dirs/CONFIG_NAME)."""
    cfg = read_config(args.config, args.cfg_options, prog)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    return cfg


def config_dataset_meta(cfg: Config) -> dict:
    """Classes (and palette) of the config's test dataset, without reading
    the dataset: its class's ``METAINFO``, updated by the config's
    ``metainfo`` and mmpretrain's ``classes`` (a list or a file)."""
    from mmengine.registry import DATASETS
    dataset = cfg.get('test_dataloader', {}).get('dataset', {})
    while 'dataset' in dataset:  # wrappers
        dataset = dataset['dataset']
    meta = {}
    try:
        with DATASETS.switch_scope_and_registry(cfg.default_scope) as reg:
            meta.update(getattr(reg.get(dataset.get('type')), 'METAINFO',
                                None) or {})
    except Exception:
        pass
    meta.update(dataset.get('metainfo') or {})
    classes = dataset.get('classes')
    if isinstance(classes, str) and osp.isfile(classes):
        with open(classes) as f:
            meta['classes'] = [line.strip() for line in f if line.strip()]
    elif isinstance(classes, (list, tuple)):
        meta['classes'] = list(classes)
    return meta


def use_gloo_without_cuda(cfg: Config, prog: str, dist_script: str) -> None:
    """Distributed runs on a machine without CUDA: gloo instead of NCCL,
    BatchNorm instead of SyncBatchNorm (``sync_bn`` and ``SyncBN`` norms),
    and a DDP wrapper without ``device_ids`` (mmengine's default names a
    GPU)."""
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        fail(prog, f'--launcher {cfg.launcher} needs CUDA; on CPU start the '
             f'processes with torchrun ({dist_script})')
    cfg.merge_from_dict({'env_cfg.dist_cfg.backend': 'gloo'})
    sync_norms = _sync_bn_to_bn(cfg.get('model'))
    if cfg.get('sync_bn') or sync_norms:
        # torch's SyncBatchNorm runs on CUDA only
        cfg.sync_bn = None
        print_log('CUDA is not available: BatchNorm is not synchronised '
                  'across the processes (SyncBatchNorm needs CUDA); each '
                  'process keeps its own statistics.', logger='current',
                  level=logging.WARNING)
    if cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))


def _sync_bn_to_bn(node) -> bool:
    """Turn every ``norm_cfg`` of type ``'SyncBN'`` under ``node`` into
    ``'BN'``, in place; whether there was one."""
    found = False
    if isinstance(node, dict):
        if node.get('type') == 'SyncBN':
            node['type'] = 'BN'
            found = True
        for child in node.values():
            found = _sync_bn_to_bn(child) or found
    elif isinstance(node, (list, tuple)):
        for child in node:
            found = _sync_bn_to_bn(child) or found
    return found


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


def pretrained_checkpoints(cfg: Config) -> Iterator[Tuple[str, str]]:
    """``(config key, checkpoint)`` of every file that training starts from:
    each ``Pretrained`` ``init_cfg`` in ``cfg.model`` (e.g.
    ``('model.backbone.init_cfg.checkpoint', path)``) and a distillation
    teacher's checkpoint (``model.teacher.checkpoint``)."""
    def walk(node, key):
        if isinstance(node, dict):
            init_cfgs = node.get('init_cfg')
            for i, init in enumerate(init_cfgs if isinstance(
                    init_cfgs, (list, tuple)) else [init_cfgs]):
                if isinstance(init, dict) and init.get('type') == 'Pretrained':
                    where = f'{key}.init_cfg' + (
                        f'[{i}]' if isinstance(init_cfgs, (list, tuple))
                        else '')
                    yield f'{where}.checkpoint', init.get('checkpoint')
            for name, child in node.items():
                if name != 'init_cfg':
                    yield from walk(child, f'{key}.{name}')
        elif isinstance(node, (list, tuple)):
            for i, child in enumerate(node):
                yield from walk(child, f'{key}[{i}]')
    model = cfg.get('model') or {}
    teacher = model.get('teacher') if isinstance(model, dict) else None
    yield from walk({k: v for k, v in model.items() if k != 'teacher'},
                    'model')
    if isinstance(teacher, dict) and teacher.get('checkpoint'):
        yield 'model.teacher.checkpoint', teacher['checkpoint']


def check_pretrained_files(cfg: Config) -> Optional[str]:
    """Why a file that training starts from cannot be loaded (it is not
    given, or not found), or None (see :func:`pretrained_checkpoints`)."""
    for key, checkpoint in pretrained_checkpoints(cfg):
        if key.startswith('model.teacher'):
            if not is_url(checkpoint) and not osp.isfile(
                    osp.expanduser(checkpoint)):
                return (f'teacher checkpoint not found: {checkpoint} '
                        f'({key}). Point --cfg-options {key}=PATH at the '
                        f'trained teacher (see configs/classification/'
                        f'README.md), or set model.teacher=None to train '
                        f'without distillation')
            continue
        if not checkpoint:
            return (f'{key} is not set: point it at the pretrained weights, '
                    f'or set model.backbone.init_cfg=None to train from '
                    f'scratch')
        if not is_url(checkpoint) and not osp.isfile(
                osp.expanduser(checkpoint)):
            return (f'pretrained checkpoint not found: {checkpoint} ({key}). '
                    f'Download the published ImageNet weights there (see '
                    f'README: Published weights), point --cfg-options '
                    f'{key}=PATH at them, or set '
                    f'model.backbone.init_cfg=None to train from scratch')
    return None


def build_runner(cfg: Config, prog: str) -> Runner:
    """The config's Runner (which builds the model); a config that cannot
    build its model ends the run with one line."""
    try:
        if 'runner_type' in cfg:
            init_default_scope(cfg.get('default_scope', 'mmengine'))
            return RUNNERS.build(cfg)
        return Runner.from_cfg(cfg)
    except CheckpointMismatchError as e:
        fail(prog, first_line(e))
    except BUILD_ERRORS as e:
        name = osp.basename(cfg.filename)
        fail(prog, f'cannot build the model of {name}: {first_line(e)}')


def check_inputs(cfg: Config, prog: str, mode: str, loaders: List[str],
                 evaluators: List[str]) -> None:
    """Stop with one line before a file the run reads is found missing or
    unreadable half-way: the files training starts from (``train`` only:
    testing sets every weight from the checkpoint under test), the
    datasets, and ``load_from``."""
    if mode == 'train':
        problem = check_pretrained_files(cfg)
        if problem:
            fail(prog, problem)
    try:
        check_data(cfg, loaders, evaluators)
    except DataCheckError as e:
        fail(prog, str(e))
    load_from = cfg.get('load_from')
    if load_from and not is_url(load_from):
        if not osp.isfile(load_from):
            fail(prog, f'checkpoint file not found: {load_from}')
        try:
            read_checkpoint(load_from)
        except ValueError as e:
            fail(prog, str(e))


def run(cfg: Config, prog: str, mode: str, loaders: List[str],
        evaluators: List[str], strict_load: bool = False) -> None:
    """Build the Runner, check the inputs and call ``runner.<mode>()``.

    The model is built first, so that a config error (an unknown arch, a
    bad option) is reported before a missing file.

    Args:
        cfg (Config): The complete config.
        prog (str): The tool's name, for error messages.
        mode (str): ``'train'`` or ``'test'``.
        loaders (list[str]): Dataloader keys whose data is checked first.
        evaluators (list[str]): Evaluator keys whose files are checked.
        strict_load (bool): Stop when ``load_from`` does not fit the model
            exactly (:class:`StrictLoadHook`).
    """
    _init_cpu_process_group(cfg, {'train': 'training'}.get(mode, 'testing'))
    runner, finished = None, False
    try:
        runner = build_runner(cfg, prog)
        check_inputs(cfg, prog, mode, loaders, evaluators)
        if strict_load:
            runner.register_hook(StrictLoadHook())
        getattr(runner, mode)()
        finished = True
    except (CheckpointMismatchError, FileNotFoundError) as e:
        fail(prog, first_line(e))
    except Exception as e:  # a file the pipeline cannot read: one line
        message = describe_load_error(e)
        if message is None:
            raise
        fail(prog, message)
    finally:
        runner = None  # DDP's reducer holds the process group: release it
        if torch.distributed.is_initialized():
            _leave_process_group(finished)


def _leave_process_group(finished: bool) -> None:
    """Tear the process group down in order. A gloo group left to the
    interpreter's exit aborts the process now and then ("terminate called
    without an active exception"), so a rank that has finished its work
    leaves at once after the teardown, its output flushed."""
    gc.collect()  # the DDP wrapper and its reducer, before the group
    try:  # no rank leaves while another still talks to the group
        torch.distributed.barrier()
    except RuntimeError:
        pass  # a peer is already gone: nothing left to wait for
    torch.distributed.destroy_process_group()
    if finished:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
