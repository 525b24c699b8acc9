"""Putting a MobileViGv2 (or MobileViG, GreedyViG) backbone into an existing
OpenMMLab config.

:func:`swap_backbone` takes a loaded config (any mmdet detector with a neck,
e.g. Faster/Mask/Cascade R-CNN, RetinaNet, FCOS, ATSS, GFL, YOLOF) and returns
a copy that uses MobileViGv2 (or its predecessor MobileViG) instead of its
backbone. ``tools/misc/
swap_backbone.py`` wraps it to write a new config file.

What changes, and nothing else:

* ``model.backbone`` becomes ``MobileViGv2`` or ``MobileViG``
  (``norm_eval=True``, an ImageNet
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

from ..errors import ConfigError
from ..models.backbones import backbone_class

#: ``{family}``: ``mobilevigv2`` or ``mobilevig``
DEFAULT_CHECKPOINT = 'checkpoints/{family}_{arch}_in1k.pth'
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]


def stage_channels(arch: str, backbone: str = 'MobileViGv2') -> List[int]:
    """Output channels of the four stages of a preset of ``backbone``."""
    return list(backbone_class(backbone).parse_arch(arch)['channels'])


def _first_neck(model: ConfigDict) -> ConfigDict:
    neck = model.get('neck')
    if isinstance(neck, (list, tuple)) and neck:
        neck = neck[0]  # e.g. [FPN, BFP]: the first one reads the backbone
    if not isinstance(neck, dict) or 'in_channels' not in neck:
        raise ConfigError(
            'swap_backbone needs a model whose neck (model.neck, or its first '
            'entry) has in_channels; this config has neck='
            f'{model.get("neck")!r}. Set the backbone and in_channels by '
            'hand.')
    return neck


def _consumed_stages(in_channels: Union[int, Sequence[int]],
                     num_stages: int) -> Tuple[int, ...]:
    count = 1 if isinstance(in_channels, int) else len(in_channels)
    if not 1 <= count <= num_stages:
        raise ConfigError(
            f'The neck takes {count} feature maps; the backbone has only '
            f'{num_stages} stages.')
    return tuple(range(num_stages - count, num_stages))


def swap_backbone(cfg: Config, arch: str = 'm',
                  checkpoint: Optional[str] = DEFAULT_CHECKPOINT,
                  norm_eval: bool = True,
                  drop_path_rate: float = 0.,
                  backbone: str = 'MobileViGv2') -> Config:
    """Return a copy of ``cfg`` with a MobileViGv2 (or MobileViG) backbone.

    Args:
        cfg (Config): A loaded config with ``model.backbone`` and a neck.
        arch (str): Preset: ``'ti'``, ``'s'``, ``'m'`` or ``'b'`` (GreedyViG
            has no ``'ti'``).
            Defaults to ``'m'``.
        checkpoint (str, optional): ImageNet checkpoint for the backbone's
            ``Pretrained`` init (``{arch}`` and ``{family}`` are filled in);
            ``None`` keeps the random init. Defaults to
            ``'checkpoints/{family}_{arch}_in1k.pth'``
            (``mobilevigv2_m_in1k.pth`` for MobileViGv2-M).
        norm_eval (bool): Keep the backbone's BatchNorm in eval mode while
            training. Defaults to True (the paper's detection recipe).
        drop_path_rate (float): Stochastic depth of the backbone.
            Defaults to 0.
        backbone (str): ``'MobileViGv2'``, ``'MobileViG'`` or
            ``'GreedyViG'``. Defaults to ``'MobileViGv2'``.

    Returns:
        Config: The new config; ``cfg`` is not modified.
    """
    channels = stage_channels(arch, backbone)
    cfg = copy.deepcopy(cfg)
    model = cfg.get('model')
    if model is None or 'backbone' not in model:
        raise ConfigError('swap_backbone needs a config with model.backbone.')
    neck = _first_neck(model)
    out_indices = _consumed_stages(neck['in_channels'], len(channels))
    if isinstance(neck['in_channels'], int):
        neck['in_channels'] = channels[out_indices[0]]
    else:
        neck['in_channels'] = [channels[i] for i in out_indices]

    new = dict(type=backbone, arch=arch, out_indices=out_indices,
               norm_eval=norm_eval, drop_path_rate=drop_path_rate)
    if checkpoint is not None:
        # EMA weights when the file has them, as the reference backbones
        path = checkpoint.format(arch=arch, family=backbone.lower())
        new['init_cfg'] = dict(type='Pretrained', checkpoint=path,
                               prefix='backbone.', use_ema=True)
    model['backbone'] = ConfigDict(new)
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
