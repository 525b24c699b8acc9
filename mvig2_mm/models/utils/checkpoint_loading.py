"""Loading pretrained MobileViGv2 weights strictly, whatever their layout."""
import os.path as osp
import re
from collections import OrderedDict
from typing import Dict, List, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.logging import MMLogger
from mmengine.runner.checkpoint import CheckpointLoader

from .checkpoint_converter import convert_reference_state_dict


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
            f'file (see README: Pretrained weights).')
    return CheckpointLoader.load_checkpoint(
        osp.expanduser(filename), map_location=map_location)


def select_state_dict(checkpoint: Mapping, use_ema: bool = False
                      ) -> Dict[str, torch.Tensor]:
    """Pick the weights out of a checkpoint file's content."""
    keys = (['state_dict_ema', 'model_ema'] if use_ema else []) + [
        'state_dict', 'model']
    for key in keys:
        if key in checkpoint and isinstance(checkpoint[key], Mapping):
            return dict(checkpoint[key])
    if use_ema:
        raise KeyError(f'use_ema=True but the checkpoint has no EMA weights '
                       f'(keys: {sorted(checkpoint)[:8]})')
    return dict(checkpoint)


def to_backbone_state_dict(state_dict: Mapping[str, torch.Tensor],
                           prefix: Optional[str] = None
                           ) -> Dict[str, torch.Tensor]:
    """Bring any supported layout to bare MobileViGv2 backbone keys.

    Handles a reference ImageNet checkpoint, a reference mmdet 2.x / mmseg
    0.x checkpoint (``backbone.`` + reference keys), and mvig2_mm checkpoints
    of a classifier, detector or segmentor; ``prefix`` selects the backbone
    keys (``'backbone.'`` for all of these).
    """
    state_dict = convert_reference_state_dict(state_dict)
    if prefix is None and not any(k.startswith('stem.') for k in state_dict) \
            and any(k.startswith('backbone.stem.') for k in state_dict):
        prefix = 'backbone.'  # a whole classifier/detector: take its backbone
    if prefix:
        selected = OrderedDict((k[len(prefix):], v)
                               for k, v in state_dict.items()
                               if k.startswith(prefix))
        if not selected:
            raise CheckpointMismatchError(
                f'No key of the checkpoint starts with prefix {prefix!r} '
                f'(first keys: {list(state_dict)[:5]})')
        state_dict = convert_reference_state_dict(selected, backbone_prefix='')
    return dict(state_dict)


def describe_arch(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Name the MobileViGv2 variant a backbone state dict looks like."""
    from ..backbones.mobilevigv2 import MobileViGv2
    stage_keys: Dict[int, Dict[int, str]] = {}
    channels: Dict[int, int] = {}
    for key, value in state_dict.items():
        m = re.match(r'^stages\.(\d+)\.(\d+)\.(\w+)', key)
        if not m:
            continue
        stage, block, part = int(m[1]), int(m[2]), m[3]
        kind = {'pw1': 'ir', 'mixer': 'mgc', 'conv': 'down'}.get(part)
        if kind:
            stage_keys.setdefault(stage, {})[block] = kind
        if part == 'pw1' and key.endswith('conv.weight'):
            channels[stage] = value.shape[1]
    if not stage_keys:
        return 'no MobileViGv2 backbone (no stages.* keys)'
    stages = sorted(stage_keys)
    found = dict(
        channels=[channels.get(s) for s in stages],
        ir_blocks=[list(stage_keys[s].values()).count('ir') for s in stages],
        mgc_blocks=[list(stage_keys[s].values()).count('mgc') for s in stages])
    for name, arch in MobileViGv2.arch_settings.items():
        if all(arch[k] == v for k, v in found.items()):
            return f"arch '{name}'"
    return 'a custom arch with ' + ', '.join(f'{k}={v}' for k, v in found.items())


def check_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor],
                     source: str, max_keys: int = 5) -> None:
    """Raise :class:`CheckpointMismatchError` unless ``state_dict`` fits
    ``model`` exactly (same names, same shapes)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    shapes = [f'{k}: checkpoint {list(state_dict[k].shape)} vs model '
              f'{list(own[k].shape)}' for k in own
              if k in state_dict and state_dict[k].shape != own[k].shape]
    if not (missing or unexpected or shapes):
        return

    def listed(what: str, keys: List[str]) -> str:
        more = f', ... ({len(keys) - max_keys} more)' if len(keys) > max_keys else ''
        return f'\n  {len(keys)} {what}: ' + ', '.join(keys[:max_keys]) + more

    arch = getattr(model, 'arch', None)
    message = (f'Checkpoint {source} does not fit {type(model).__name__}'
               + (f'(arch={_arch_name(model)})' if arch else '') + ':'
               + (listed('missing keys', missing) if missing else '')
               + (listed('unexpected keys', unexpected) if unexpected else '')
               + (listed('shape mismatches', shapes) if shapes else '')
               + f'\n  The checkpoint looks like {describe_arch(state_dict)}.')
    if getattr(model, 'deploy', False) and any('.bn.' in k for k in state_dict):
        message += ('\n  It is a training-form checkpoint and the model is '
                    'built with deploy=True: load it with deploy=False, or '
                    'convert it with tools/model_converters/'
                    'reparameterize_model.py.')
    raise CheckpointMismatchError(message)


def _arch_name(model: nn.Module) -> str:
    for name, arch in type(model).arch_settings.items():
        if arch == model.arch:
            return repr(name)
    return repr(model.arch)


def load_pretrained(model: nn.Module, checkpoint: str,
                    prefix: Optional[str] = None, map_location='cpu',
                    use_ema: bool = False) -> None:
    """Load a pretrained backbone checkpoint into ``model``, strictly.

    Args:
        model (nn.Module): A ``MobileViGv2``.
        checkpoint (str): Path or URL of the checkpoint.
        prefix (str, optional): Prefix of the backbone keys in the file,
            e.g. ``'backbone.'``.
        map_location: Passed to ``torch.load``. Defaults to ``'cpu'``.
        use_ema (bool): Take ``state_dict_ema`` of a reference checkpoint
            (the reference detection/segmentation recipes do).
    """
    content = load_checkpoint_file(checkpoint, map_location)
    state_dict = to_backbone_state_dict(select_state_dict(content, use_ema),
                                        prefix)
    check_state_dict(model, state_dict, repr(checkpoint))
    model.load_state_dict(state_dict, strict=True)
    MMLogger.get_current_instance().info(
        f'Loaded {type(model).__name__} weights from {checkpoint}'
        + (f' (prefix {prefix!r})' if prefix else ''))


def backbone_form_mismatch(model_cfg: Mapping,
                           checkpoint: str) -> Optional[str]:
    """Why a local checkpoint does not fit the form (training or deploy) of
    the MobileViGv2 backbone that ``model_cfg`` builds, or None if it fits or
    cannot be told (no MobileViGv2 backbone, a URL, other key names).

    mmengine's Runner loads checkpoints non-strictly: a deploy-form
    checkpoint in a training-form model (or the other way round) would only
    log missing keys and then predict with random weights.
    """
    backbone = model_cfg.get('backbone') or {}
    if backbone.get('type') != 'MobileViGv2' or not osp.isfile(checkpoint):
        return None
    try:  # memory-mapped: only the key names are read
        content = torch.load(checkpoint, map_location='cpu', mmap=True)
    except Exception:  # noqa: BLE001 (the Runner reports unreadable files)
        return None
    if not isinstance(content, Mapping):
        return None
    keys = [k for k in select_state_dict(content) if k.startswith('backbone.')]
    training_form = any('.bn.' in k or 'layer_scale' in k for k in keys)
    deploy_form = any('cpe.reparam_conv' in k for k in keys)
    if training_form == deploy_form:  # neither (other names) or both
        return None
    name = osp.basename(checkpoint)
    if backbone.get('deploy', False) and training_form:
        return (f'{name} holds the training form of the MobileViGv2 backbone '
                f'(BatchNorm, layer scales) but the config builds its deploy '
                f'form (model.backbone.deploy=True): use the training config, '
                f'or convert the checkpoint with '
                f'tools/model_converters/reparameterize_model.py')
    if not backbone.get('deploy', False) and deploy_form:
        return (f'{name} holds the deploy form of the MobileViGv2 backbone '
                f'(norms folded into its convolutions): add --cfg-options '
                f'model.backbone.deploy=True (classifiers: use the config in '
                f'configs/classification/deploy/)')
    return None
