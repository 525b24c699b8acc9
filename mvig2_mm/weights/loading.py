"""Loading checkpoints strictly, whatever their layout.

mmengine loads checkpoints non-strictly: a tensor that fits nothing, or a
parameter the file does not have, is only logged, and the model then predicts
with random weights. :func:`check_checkpoint` says, before anything is
loaded, whether a file fits a whole model exactly (after the conversions the
model applies on load), and why not.
"""
import os.path as osp
from collections import OrderedDict
from typing import List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_info import checkpoint_family, checkpoint_form
from .converter import (checking, convert_reference_state_dict, guess_task,
                        has_ema_weights, select_state_dict)

__all__ = [
    'CheckpointMismatchError', 'check_checkpoint', 'describe_arch',
    'load_checkpoint_file', 'load_checkpoint_strictly', 'load_pretrained',
    'pretrained_cfg'
]


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not fit the model they are loaded into."""


def pretrained_cfg(init_cfg: Optional[Union[dict, Sequence[dict]]]
                   ) -> Optional[dict]:
    """Return the arguments of the ``Pretrained`` entry of ``init_cfg``."""
    cfgs = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    for cfg in cfgs:
        if cfg is not None and cfg.get('type') == 'Pretrained':
            args = dict(cfg)
            args.pop('type')
            return args
    return None


def load_checkpoint_file(filename: str, map_location='cpu') -> dict:
    """Load a checkpoint (local path or URL) with ``weights_only`` loading.

    The data-only classes of reference and mmengine checkpoints are
    allow-listed on ``import mvig2_mm``.
    """
    if not filename:
        raise FileNotFoundError(
            'No checkpoint given: set init_cfg.checkpoint to a MobileViGv2 '
            'ImageNet checkpoint (converted or reference layout).')
    if '://' not in filename and not osp.isfile(osp.expanduser(filename)):
        raise FileNotFoundError(
            f'Pretrained checkpoint not found: {filename!r}. Point '
            f"init_cfg=dict(type='Pretrained', checkpoint=...) at an existing "
            f'file (see README: Published weights).')
    return CheckpointLoader.load_checkpoint(
        osp.expanduser(filename), map_location=map_location)


def _mvig_backbones(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """``(prefix, module)`` of the MobileViG backbones inside ``model``."""
    return [(name + '.' if name else '', module)
            for name, module in model.named_modules()
            if hasattr(module, 'arch_settings') and hasattr(module, 'stages')]


def describe_arch(state_dict: Mapping[str, torch.Tensor],
                  backbone_cls: type) -> str:
    """Name the variant of ``backbone_cls`` (a MobileViG backbone class) that
    a bare backbone state dict (converted keys) looks like."""
    name = backbone_cls.__name__
    found = backbone_cls.arch_from_state_dict(dict(state_dict))
    if not found:
        return f'no {name} backbone'
    for arch_name, arch in backbone_cls.arch_settings.items():
        if all(arch[k] == v for k, v in found.items()):
            return f"arch '{arch_name}'"
    return 'a custom arch with ' + ', '.join(
        f'{k}={v}' for k, v in found.items())


def _arch_name(backbone: nn.Module) -> str:
    for name, arch in backbone.arch_settings.items():
        if arch == backbone.arch:
            return repr(name)
    return repr(backbone.arch)


def as_loaded(model: nn.Module, state_dict: Mapping[str, torch.Tensor]
              ) -> 'OrderedDict[str, torch.Tensor]':
    """``state_dict`` as ``model`` sees it when it is loaded: after the
    conversions of every module's load pre-hooks (MobileViGv2 renames
    reference keys), in the order PyTorch and mmengine apply them."""
    state_dict = OrderedDict(state_dict)
    with checking():
        for name, module in model.named_modules():
            prefix = name + '.' if name else ''
            for hook in module._load_state_dict_pre_hooks.values():
                hook(state_dict, prefix, {}, True, [], [], [])
    return state_dict


def _listed(what: str, keys: List[str], max_keys: int) -> str:
    more = (f', ... ({len(keys) - max_keys} more)'
            if len(keys) > max_keys else '')
    return f'{len(keys)} {what}: ' + ', '.join(keys[:max_keys]) + more


def _likely_cause(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                  missing: List[str], unexpected: List[str],
                  shapes: List[str]) -> str:
    """One sentence on why a (converted) state dict does not fit."""
    file_task, model_task = guess_task(state_dict), guess_task(
        model.state_dict())
    if file_task and model_task and file_task != model_task:
        return (f'it is a {file_task} checkpoint and the config builds a '
                f'{model_task} model: use a {file_task} config')
    for prefix, backbone in _mvig_backbones(model):
        keys = {k[len(prefix):]: v for k, v in state_dict.items()
                if k.startswith(prefix)}
        name = type(backbone).__name__
        if not any(k.startswith(('stem.', 'stages.')) for k in keys):
            first = ', '.join(list(state_dict)[:3])
            return (f'it holds no {name} weights under {prefix!r} (another '
                    f"model's or another library's file? its first keys: "
                    f'{first})')
        family = checkpoint_family(keys)
        if family and family != name:
            return (f'it is a {family} checkpoint and the model is {name}: '
                    f'use a {family} config')
        form = checkpoint_form(keys)
        if backbone.deploy and form == 'training':
            return ('it is a training-form checkpoint and the model is built '
                    'with deploy=True: load it with deploy=False, or convert '
                    'it with tools/model_converters/reparameterize_model.py')
        if not backbone.deploy and form == 'deploy':
            return ('it is a deploy-form checkpoint (norms folded into the '
                    'convolutions) and the model is built with deploy=False: '
                    'build it with deploy=True')
        found = describe_arch(keys, type(backbone))
        if found != f'arch {_arch_name(backbone)}' and any(
                k.startswith(prefix) for k in unexpected + shapes):
            return (f'the checkpoint looks like {found} ({name}) and the '
                    f'model is arch={_arch_name(backbone)}: use the config of '
                    f'that variant')
        if any(k.startswith(prefix) for k in missing):
            return (f'its {name} weights are incomplete (a truncated or '
                    f'partial file?)')
    return ('it was saved from another config (different neck or head '
            'settings, or number of classes)')


def check_checkpoint(model: nn.Module,
                     checkpoint: Mapping,
                     source: str = 'the checkpoint',
                     ignore: Sequence[str] = (),
                     max_keys: int = 5) -> None:
    """Raise unless ``checkpoint`` sets every parameter and buffer of
    ``model`` and brings nothing else.

    Works on any model (a backbone, classifier, detector or segmentor) and
    any supported layout: the conversions that the model's modules apply on
    load (:func:`as_loaded`) are applied first. ``num_batches_tracked``
    counters that a file lacks are not counted as missing (PyTorch fills
    them in).

    Args:
        model (nn.Module): The model, not wrapped (no DDP ``module.``).
        checkpoint (Mapping): A loaded checkpoint file (its ``state_dict`` is
            taken, as mmengine does) or a state dict.
        source (str): How to name the file in the message.
        ignore (Sequence[str]): Key prefixes of the model that the caller
            re-initialises on purpose (not reported as missing).
        max_keys (int): How many keys each part of the message names.

    Raises:
        CheckpointMismatchError: with a one-line message naming the first
            missing, unexpected and mis-shaped keys and the likely cause
            (wrong variant, wrong task, deploy vs training form, another
            model's file).
    """
    state_dict = as_loaded(model, select_state_dict(checkpoint))
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict
               and not k.endswith('num_batches_tracked')
               and not k.startswith(tuple(ignore))]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f'{k}: checkpoint {list(state_dict[k].shape)} vs model '
              f'{list(own[k].shape)}' for k in own
              if k in state_dict and hasattr(state_dict[k], 'shape')
              and state_dict[k].shape != own[k].shape]
    if not (missing or unexpected or shapes):
        return
    backbones = _mvig_backbones(model)
    what = type(model).__name__
    if backbones and backbones[0][1] is model:
        what += f'(arch={_arch_name(model)})'
    parts = [_listed(kind, keys, max_keys) for kind, keys in (
        ('missing keys', missing), ('unexpected keys', unexpected),
        ('shape mismatches', shapes)) if keys]
    cause = _likely_cause(model, state_dict, missing, unexpected, shapes)
    raise CheckpointMismatchError(
        f'{source} does not fit {what}: ' + '; '.join(parts)
        + f'; likely cause: {cause}')


def load_checkpoint_strictly(model: nn.Module, filename: str,
                             map_location='cpu') -> dict:
    """Load a checkpoint file into a whole model, strictly.

    Any supported layout: the model's modules convert published files while
    they load (see :func:`check_checkpoint`).

    Args:
        model (nn.Module): A classifier, detector, segmentor or backbone.
        filename (str): Path or URL of the checkpoint.
        map_location: Passed to ``torch.load``. Defaults to ``'cpu'``.

    Returns:
        dict: The file's content (``meta`` and all).

    Raises:
        FileNotFoundError: No such file.
        CheckpointMismatchError: The file does not fit ``model``.
    """
    content = load_checkpoint_file(filename, map_location)
    check_checkpoint(model, content, f'Checkpoint {filename!r}')
    model.load_state_dict(select_state_dict(content), strict=True)
    return content


def load_pretrained(model: nn.Module, checkpoint: str,
                    prefix: Optional[str] = None, map_location='cpu',
                    use_ema: bool = False) -> None:
    """Load a pretrained backbone checkpoint into ``model``, strictly.

    Args:
        model (nn.Module): A MobileViG backbone.
        checkpoint (str): Path or URL of the checkpoint: a published or
            converted ImageNet classifier, a detector or segmentor, or a bare
            backbone.
        prefix (str, optional): Prefix of the backbone keys in the file,
            e.g. ``'backbone.'``; found by itself when the file is a whole
            model and no prefix is given.
        map_location: Passed to ``torch.load``. Defaults to ``'cpu'``.
        use_ema (bool): Take the EMA weights of a file that has them, as the
            reference detection and segmentation backbones do.
    """
    content = load_checkpoint_file(checkpoint, map_location)
    has_ema = has_ema_weights(content)
    state_dict = convert_reference_state_dict(
        select_state_dict(content, use_ema))
    if prefix is None and not any(k.startswith('stem.') for k in state_dict):
        prefix = 'backbone.'  # a whole classifier/detector: its backbone
    if prefix:
        state_dict = OrderedDict((k[len(prefix):], v)
                                 for k, v in state_dict.items()
                                 if k.startswith(prefix))
        if not state_dict:
            raise CheckpointMismatchError(
                f'No key of {checkpoint!r} starts with prefix {prefix!r}: '
                f'set init_cfg.prefix to the prefix of the backbone keys '
                f"('backbone.' for classifiers, detectors and segmentors)")
    check_checkpoint(model, state_dict, f'Checkpoint {checkpoint!r}')
    model.load_state_dict(state_dict, strict=True)
    weights = ('EMA weights' if use_ema and has_ema else
               'weights (the file has no EMA weights)' if use_ema else
               'weights')
    MMLogger.get_current_instance().info(
        f'Loaded {type(model).__name__} {weights} from {checkpoint}'
        + (f' (prefix {prefix!r})' if prefix else ''))
