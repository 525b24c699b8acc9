"""What ``tools/train.py``, ``tools/test.py`` and ``tools/infer.py`` share.

Loading a config with the usual command-line overrides, running
distributed on a machine without CUDA (gloo; mmengine assumes a GPU), the
pre-flight checks (datasets, pretrained and ``load_from`` checkpoints),
``torch.compile`` for testing, and running the Runner. A mistake of the
user's found here raises :class:`~mvig2_mm.cli.tool.ToolError` (or one of
the errors :func:`~mvig2_mm.cli.tool.user_error_message` lists), which the
tool reports in one line; any other exception keeps its traceback.
"""
import argparse
import datetime
import gc
import logging
import os
import os.path as osp
import sys
from typing import Callable, Iterator, List, Optional, Tuple

import torch
from mmengine.config import Config, DictAction
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import RUNNERS, init_default_scope
from mmengine.runner import Runner

from ..errors import ConfigError
from .checkpoints import StrictLoadHook, first_line, read_checkpoint
from .data_checks import check_data
from .tool import ToolError, add_debug_argument, is_registry_key_error

COMPILE_HELP = (
    'torch.compile the model (mmengine\'s "compile" config key: '
    '--cfg-options compile.backend=... compile.mode=... set its options). '
    'The first batches are slow while it compiles')


def is_url(path: str) -> bool:
    """Whether ``path`` is a URL (``https://...``, ``s3://...``)."""
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
    add_debug_argument(parser)
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


def read_config(path: str, cfg_options: Optional[dict]) -> Config:
    """Load the config file ``path`` and apply ``--cfg-options``."""
    if not osp.isfile(path):
        raise ToolError(f'config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except TypeError as exc:
        # mmengine's merge of a child config into its base; its message
        # names the key and the fix (``_delete_=True``)
        if 'cannot inherit from base' not in str(exc):
            raise
        raise ConfigError(f'{path}: {first_line(exc)}') from exc
    if cfg_options is not None:
        cfg.merge_from_dict(cfg_options)
    return cfg


def load_config(args: argparse.Namespace) -> Config:
    """Load ``args.config`` and apply ``--cfg-options``, ``--launcher`` and
    the work dir (command line > config > ./work_dirs/CONFIG_NAME)."""
    cfg = read_config(args.config, args.cfg_options)
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


def enable_compile(cfg: Config) -> None:
    """Set mmengine's ``compile`` config key (``--compile``), keeping the
    options that ``--cfg-options compile.KEY=VALUE`` gave."""
    if not isinstance(cfg.get('compile'), dict):
        cfg.compile = True


def use_gloo_without_cuda(cfg: Config, dist_script: str) -> None:
    """Distributed runs on a machine without CUDA: gloo instead of NCCL,
    BatchNorm instead of SyncBatchNorm (``sync_bn`` and ``SyncBN`` norms),
    and a DDP wrapper without ``device_ids`` (mmengine's default names a
    GPU)."""
    if cfg.launcher == 'none' or torch.cuda.is_available():
        return
    if cfg.launcher != 'pytorch':
        raise ToolError(f'--launcher {cfg.launcher} needs CUDA; on CPU start '
                        f'the processes with torchrun ({dist_script})')
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
        teacher = key.startswith('model.teacher')
        if not checkpoint:
            return (f'{key} is not set: point it at the pretrained weights, '
                    f'or set model.backbone.init_cfg=None to train from '
                    f'scratch')
        if is_url(checkpoint) or osp.isfile(osp.expanduser(checkpoint)):
            continue
        if teacher:
            return (f'teacher checkpoint not found: {checkpoint} ({key}). '
                    f'Point --cfg-options {key}=PATH at the trained teacher '
                    f'(see configs/classification/README.md), or set '
                    f'model.teacher=None to train without distillation')
        return (f'pretrained checkpoint not found: {checkpoint} ({key}). '
                f'Download the published ImageNet weights there (see '
                f'README: Published weights), point --cfg-options '
                f'{key}=PATH at them, or set model.backbone.init_cfg=None '
                f'to train from scratch')
    return None


def build_runner(cfg: Config) -> Runner:
    """The config's Runner (which builds the model).

    Raises:
        ToolError: The config cannot build its model: a
            :class:`~mvig2_mm.errors.ConfigError` or an unknown ``type``
            (any other error is not caught).
    """
    try:
        if 'runner_type' in cfg:
            init_default_scope(cfg.get('default_scope', 'mmengine'))
            return RUNNERS.build(cfg)
        return Runner.from_cfg(cfg)
    except (ConfigError, KeyError) as e:
        if isinstance(e, KeyError) and not is_registry_key_error(e):
            raise
        name = osp.basename(cfg.filename)
        raise ToolError(
            f'cannot build the model of {name}: {first_line(e)}') from e


def check_inputs(cfg: Config, mode: str, loaders: List[str],
                 evaluators: List[str]) -> None:
    """Stop before a file the run reads is found missing or unreadable
    half-way: the files training starts from (``train`` only: testing sets
    every weight from the checkpoint under test), the datasets, and
    ``load_from``.

    Raises:
        ToolError: The first problem, in one line.
        DataCheckError: A dataset does not fit its config.
    """
    if mode == 'train':
        problem = check_pretrained_files(cfg)
        if problem:
            raise ToolError(problem)
    check_data(cfg, loaders, evaluators)
    load_from = cfg.get('load_from')
    if load_from and not is_url(load_from):
        if not osp.isfile(load_from):
            raise ToolError(f'checkpoint file not found: {load_from}')
        try:
            read_checkpoint(load_from)
        except ValueError as e:
            raise ToolError(str(e)) from e


class CompileHook(Hook):
    """``torch.compile`` the model before testing, with the options of
    mmengine's ``compile`` config key (``True`` or the keyword arguments of
    ``torch.compile``). mmengine's Runner applies that key to training only
    (its ``train_step``).

    The model's forward is replaced by its compiled form
    (:func:`compile_model`): the ``test_step`` of the model, and of a DDP
    wrapper around it, runs the compiled network; the data preprocessing
    stays eager.
    """

    priority = 'VERY_LOW'

    def before_test(self, runner) -> None:
        options = runner.cfg.get('compile')
        if not options:
            return
        options = {} if options is True else dict(options)
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        compile_model(model, options)


def compile_model(model: torch.nn.Module, options: Optional[dict] = None
                  ) -> None:
    """Replace ``model``'s forward by its ``torch.compile`` (keyword
    arguments ``options``) for inference, and say so in the log.

    With inductor (the default backend) the weights are frozen as
    constants (:func:`~mvig2_mm.deployment.runtimes.compile_frozen`), for
    graphs compiled without gradients, as the test loop and the inferencer
    run them.
    """
    from ..deployment.runtimes import compile_frozen
    options = dict(options or {})
    model.forward = compile_frozen(model.forward, **options)
    frozen = options.get('backend', 'inductor') == 'inductor'
    described = ', '.join(f'{k}={v!r}' for k, v in options.items())
    print_log(f'The model is compiled with torch.compile'
              f'{f" ({described})" if described else ""}'
              f'{", its weights frozen" if frozen else ""}: the first '
              f'batches are slow while it compiles.', logger='current')


def run(cfg: Config, mode: str, loaders: List[str], evaluators: List[str],
        strict_load: bool = False,
        build: Optional[Callable[[Config], Runner]] = None) -> None:
    """Build the Runner, check the inputs and call ``runner.<mode>()``.

    The model is built first, so that a config error (an unknown arch, a
    bad option) is reported before a missing file. A distributed run leaves
    its process group in order whatever happens.

    Args:
        cfg (Config): The complete config.
        mode (str): ``'train'`` or ``'test'``.
        loaders (list[str]): Dataloader keys whose data is checked first.
        evaluators (list[str]): Evaluator keys whose files are checked.
        strict_load (bool): Stop when ``load_from`` does not fit the model
            exactly (:class:`StrictLoadHook`).
        build (callable, optional): Builds the Runner of ``cfg`` instead of
            :func:`build_runner`, its model given (e.g. an exported one);
            the inputs are checked before it is called (it may build the
            dataloaders at once).

    Raises:
        ToolError: A mistake of the user's (and the other errors that
            :func:`~mvig2_mm.cli.tool.user_error_message` reports in one
            line); any other exception is a bug and propagates as it is.
    """
    _init_cpu_process_group(cfg, {'train': 'training'}.get(mode, 'testing'))
    runner, finished = None, False
    try:
        if build is None:
            runner = build_runner(cfg)
            check_inputs(cfg, mode, loaders, evaluators)
        else:
            check_inputs(cfg, mode, loaders, evaluators)
            runner = build(cfg)
        if strict_load:
            runner.register_hook(StrictLoadHook())
        if mode == 'test' and cfg.get('compile'):
            runner.register_hook(CompileHook())
        getattr(runner, mode)()
        finished = True
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
