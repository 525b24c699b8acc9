"""Putting a MobileViGv2 backbone into an existing OpenMMLab config.

:func:`swap_backbone` takes a loaded config (any mmdet detector with a neck,
e.g. Faster/Mask/Cascade R-CNN, RetinaNet, FCOS, ATSS, GFL, YOLOF) and returns
a copy that uses MobileViGv2 instead of its backbone. ``tools/misc/
swap_backbone.py`` wraps it to write a new config file.

What changes, and nothing else:

* ``model.backbone`` becomes ``MobileViGv2`` (``norm_eval=True``, an ImageNet
  ``Pretrained`` init unless ``checkpoint=None``); ``model.pretrained`` goes.
* The neck's ``in_channels`` become the channels of the stages it consumes:
  a neck that takes ``n`` feature maps gets the last ``n`` stages (strides
  4-32 for ``n = 4``, 8-32 for ``n = 3``, 32 for one), which is what ResNet
  configs feed their necks. The neck's other settings (``start_level``,
  ``add_extra_convs``, ...) are kept.
* ``model.data_preprocessor`` normalises with the RGB ImageNet statistics the
  backbone was trained with (caffe-style configs use BGR and other values).
* ``custom_imports`` gains ``mvig2_mm``.

The optimizer and schedule are left as they are; the paper's detection recipe
uses AdamW (see ``configs/detection/README.md``).
"""
import copy
from typing import List, Optional, Sequence, Tuple, Union

from mmengine.config import Config, ConfigDict

from ..models.backbones.mobilevigv2 import MobileViGv2

DEFAULT_CHECKPOINT = 'checkpoints/mobilevigv2_{arch}_in1k.pth'
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]


def stage_channels(arch: str) -> List[int]:
    """Output channels of the four stages of a MobileViGv2 preset."""
    return list(MobileViGv2.parse_arch(arch)['channels'])


def _first_neck(model: ConfigDict) -> ConfigDict:
    neck = model.get('neck')
    if isinstance(neck, (list, tuple)) and neck:
        neck = neck[0]  # e.g. [FPN, BFP]: the first one reads the backbone
    if not isinstance(neck, dict) or 'in_channels' not in neck:
        raise ValueError(
            'swap_backbone needs a model whose neck (model.neck, or its first '
            'entry) has in_channels; this config has neck='
            f'{model.get("neck")!r}. Set the backbone and in_channels by '
            'hand.')
    return neck


def _consumed_stages(in_channels: Union[int, Sequence[int]],
                     num_stages: int) -> Tuple[int, ...]:
    count = 1 if isinstance(in_channels, int) else len(in_channels)
    if not 1 <= count <= num_stages:
        raise ValueError(
            f'The neck takes {count} feature maps; MobileViGv2 has only '
            f'{num_stages} stages.')
    return tuple(range(num_stages - count, num_stages))


def swap_backbone(cfg: Config, arch: str = 'm',
                  checkpoint: Optional[str] = DEFAULT_CHECKPOINT,
                  norm_eval: bool = True,
                  drop_path_rate: float = 0.) -> Config:
    """Return a copy of ``cfg`` with a MobileViGv2 backbone.

    Args:
        cfg (Config): A loaded config with ``model.backbone`` and a neck.
        arch (str): MobileViGv2 preset: ``'ti'``, ``'s'``, ``'m'`` or
            ``'b'``. Defaults to ``'m'``.
        checkpoint (str, optional): ImageNet checkpoint for the backbone's
            ``Pretrained`` init (``{arch}`` is filled in); ``None`` keeps the
            random init. Defaults to
            ``'checkpoints/mobilevigv2_{arch}_in1k.pth'``.
        norm_eval (bool): Keep the backbone's BatchNorm in eval mode while
            training. Defaults to True (the paper's detection recipe).
        drop_path_rate (float): Stochastic depth of the backbone.
            Defaults to 0.

    Returns:
        Config: The new config; ``cfg`` is not modified.
    """
    channels = stage_channels(arch)
    cfg = copy.deepcopy(cfg)
    model = cfg.get('model')
    if model is None or 'backbone' not in model:
        raise ValueError('swap_backbone needs a config with model.backbone.')
    neck = _first_neck(model)
    out_indices = _consumed_stages(neck['in_channels'], len(channels))
    if isinstance(neck['in_channels'], int):
        neck['in_channels'] = channels[out_indices[0]]
    else:
        neck['in_channels'] = [channels[i] for i in out_indices]

    backbone = dict(type='MobileViGv2', arch=arch, out_indices=out_indices,
                    norm_eval=norm_eval, drop_path_rate=drop_path_rate)
    if checkpoint is not None:
        # EMA weights when the file has them, as the reference backbones
        backbone['init_cfg'] = dict(type='Pretrained',
                                    checkpoint=checkpoint.format(arch=arch),
                                    prefix='backbone.', use_ema=True)
    model['backbone'] = ConfigDict(backbone)
    model.pop('pretrained', None)

    preprocessor = model.get('data_preprocessor')
    if isinstance(preprocessor, dict) and 'mean' in preprocessor:
        preprocessor.update(mean=IMAGENET_MEAN, std=IMAGENET_STD,
                            bgr_to_rgb=True)

    imports = cfg.get('custom_imports') or {}
    modules = list(imports.get('imports', []))
    if isinstance(imports.get('imports'), str):
        modules = [imports['imports']]
    if 'mvig2_mm' not in modules:
        modules.append('mvig2_mm')
    cfg.custom_imports = dict(
        imports=modules,
        allow_failed_imports=imports.get('allow_failed_imports', False))
    return cfg
