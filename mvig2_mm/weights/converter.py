"""Converting published MobileViGv2 checkpoints to mvig2_mm's layout.

The reference (github.com/SLDGroup/MobileViGv2) names tensors
``stem.stem.*``, ``backbone.{stage}.{block}.*``, ``prediction.*``, ``head.*``
and ``dist_head.*``. mvig2_mm uses OpenMMLab names (``ConvModule`` ``conv`` /
``bn``): a backbone (``stem.*``, ``stages.*``) and, for an mmpretrain
``ImageClassifier``, a ``MobileViGv2Head`` (``embed``, ``fc``, ``fc_dist``).

Three kinds of published file exist:

- ImageNet classifiers (timm-style training checkpoints): ``state_dict``,
  ``state_dict_ema``, ``args``, ... with the reference names at the root;
- COCO Mask R-CNN (mmdet 2.28) and ADE20K Semantic FPN (mmseg 0.30) models:
  ``state_dict`` with the reference backbone names under ``backbone.`` and
  neck and heads under the names mmdet 3.x / mmseg 1.x still use (their
  model zoos link the 2.x / 0.x files of these models unchanged), and
  ``meta`` with ``CLASSES`` (and mmseg's ``PALETTE``).

:func:`convert_backbone_keys_` is what :class:`MobileViGv2` applies to its
own keys whenever a state dict is loaded into it (a load pre-hook, so
mmengine's and PyTorch's loaders all convert);
:func:`convert_reference_state_dict` converts a whole reference classifier;
:func:`convert_checkpoint` turns any published file into an mmengine
checkpoint (the offline converter).
"""
import re
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Dict, Iterator, List, Mapping, MutableMapping, Optional

import torch
from mmengine.logging import MMLogger

StateDict = Dict[str, torch.Tensor]

# (pattern, replacement) over reference backbone keys, first match wins.
_BACKBONE_RULES = [
    (r'^stem\.stem\.0\.', 'stem.0.conv.'),
    (r'^stem\.stem\.1\.', 'stem.0.bn.'),
    (r'^stem\.stem\.3\.', 'stem.1.conv.'),
    (r'^stem\.stem\.4\.', 'stem.1.bn.'),
    (r'^backbone\.(\d+)\.(\d+)\.conv\.0\.', r'stages.\1.\2.conv.'),
    (r'^backbone\.(\d+)\.(\d+)\.conv\.1\.', r'stages.\1.\2.bn.'),
    (r'^backbone\.(\d+)\.(\d+)\.dws\.pw1\.', r'stages.\1.\2.pw1.conv.'),
    (r'^backbone\.(\d+)\.(\d+)\.dws\.norm1\.', r'stages.\1.\2.pw1.bn.'),
    (r'^backbone\.(\d+)\.(\d+)\.dws\.dw\.', r'stages.\1.\2.dw.conv.'),
    (r'^backbone\.(\d+)\.(\d+)\.dws\.norm2\.', r'stages.\1.\2.dw.bn.'),
    (r'^backbone\.(\d+)\.(\d+)\.dws\.pw2\.', r'stages.\1.\2.pw2.conv.'),
    (r'^backbone\.(\d+)\.(\d+)\.dws\.norm3\.', r'stages.\1.\2.pw2.bn.'),
    (r'^backbone\.(\d+)\.(\d+)\.mixer\.(fc1|fc2)\.0\.',
     r'stages.\1.\2.mixer.\3.conv.'),
    (r'^backbone\.(\d+)\.(\d+)\.mixer\.(fc1|fc2)\.1\.',
     r'stages.\1.\2.mixer.\3.bn.'),
    (r'^backbone\.(\d+)\.(\d+)\.mixer\.graph_conv\.nn\.0\.',
     r'stages.\1.\2.mixer.graph_conv.nn.conv.'),
    (r'^backbone\.(\d+)\.(\d+)\.mixer\.graph_conv\.nn\.1\.',
     r'stages.\1.\2.mixer.graph_conv.nn.bn.'),
    (r'^backbone\.(\d+)\.(\d+)\.ffn\.0\.', r'stages.\1.\2.ffn.0.conv.'),
    (r'^backbone\.(\d+)\.(\d+)\.ffn\.1\.', r'stages.\1.\2.ffn.0.bn.'),
    (r'^backbone\.(\d+)\.(\d+)\.ffn\.3\.', r'stages.\1.\2.ffn.1.conv.'),
    (r'^backbone\.(\d+)\.(\d+)\.ffn\.4\.', r'stages.\1.\2.ffn.1.bn.'),
    (r'^backbone\.(\d+)\.(\d+)\.', r'stages.\1.\2.'),  # layer scales, cpe
]
_HEAD_RULES = [
    (r'^prediction\.1\.', 'embed.conv.'),
    (r'^prediction\.2\.', 'embed.bn.'),
    (r'^head\.', 'fc.'),
    (r'^dist_head\.', 'fc_dist.'),
]
# MobileViG (v1): its flat ``local_backbone`` list (inverted residuals and
# downsampling convs) and its global ``backbone.{i}.{0: Grapher, 1: FFN}``.
_MOBILEVIG_IR_RULES = [
    (r'^mlp\.fc1\.', 'pw1.conv.'),
    (r'^mlp\.norm1\.', 'pw1.bn.'),
    (r'^mlp\.mid\.', 'dw.conv.'),
    (r'^mlp\.mid_norm\.', 'dw.bn.'),
    (r'^mlp\.fc2\.', 'pw2.conv.'),
    (r'^mlp\.norm2\.', 'pw2.bn.'),
    (r'^layer_scale_2$', 'layer_scale_1'),
]
_MOBILEVIG_DOWN_RULES = [(r'^conv\.0\.', 'conv.'), (r'^conv\.1\.', 'bn.')]
_MOBILEVIG_SVGA_RULES = [
    (r'^0\.(fc1|fc2)\.0\.', r'grapher.\1.conv.'),
    (r'^0\.(fc1|fc2)\.1\.', r'grapher.\1.bn.'),
    (r'^0\.graph_conv\.nn\.0\.', 'grapher.graph_conv.nn.conv.'),
    (r'^0\.graph_conv\.nn\.1\.', 'grapher.graph_conv.nn.bn.'),
    (r'^1\.fc1\.0\.', 'ffn.0.conv.'),
    (r'^1\.fc1\.1\.', 'ffn.0.bn.'),
    (r'^1\.fc2\.0\.', 'ffn.1.conv.'),
    (r'^1\.fc2\.1\.', 'ffn.1.bn.'),
]
# A reference backbone key (relative to the backbone), and nothing of ours.
_REFERENCE_BACKBONE_KEY = re.compile(
    r'^(stem\.stem\.|backbone\.\d+\.\d+\.|local_backbone\.)')
# A key of a whole reference classifier, and nothing of ours.
_REFERENCE_KEY = re.compile(
    r'^(stem\.stem\.|backbone\.\d+\.\d+\.|local_backbone\.|prediction\.'
    r'|dist_head\.|head\.(weight|bias)$)')

#: The top-level modules that tell a file's task.
TASK_PREFIXES = {
    'detection': ('rpn_head.', 'roi_head.', 'bbox_head.'),
    'segmentation': ('decode_head.', 'auxiliary_head.'),
    'classification': ('head.', 'prediction.', 'dist_head.'),
}


def _strip_module(key: str) -> str:
    return key[len('module.'):] if key.startswith('module.') else key


def _apply(rules, key: str) -> Optional[str]:
    for pattern, repl in rules:
        new, hits = re.subn(pattern, repl, key)
        if hits:
            return new
    return None


def is_reference_layout(state_dict: Mapping[str, object]) -> bool:
    """Whether ``state_dict`` is a reference classifier's (any key in the
    reference layout at the root)."""
    return any(_REFERENCE_KEY.match(_strip_module(k)) for k in state_dict)


def _mobilevig_names(keys: List[str]) -> Dict[str, str]:
    """``{reference name: ours}`` of a MobileViG (v1) backbone's keys: the
    flat ``local_backbone`` list becomes stages 0-2 (a downsampling conv
    starts the next stage), the global blocks follow the last downsampling
    conv in stage 3."""
    entries = sorted({int(k.split('.')[1]) for k in keys
                      if k.startswith('local_backbone.')})
    place, stage, block = {}, 0, 0
    for j in entries:
        if f'local_backbone.{j}.conv.0.weight' in keys:  # Downsample
            stage, block = stage + 1, 0
        place[j] = (stage, block)
        block += 1
    names = {}
    for key in keys:
        m = re.match(r'^local_backbone\.(\d+)\.(.*)$', key)
        if m:
            s, b = place[int(m[1])]
            rules = _MOBILEVIG_IR_RULES if b or s == 0 else \
                _MOBILEVIG_DOWN_RULES
            names[key] = f'stages.{s}.{b}.{_apply(rules, m[2]) or m[2]}'
            continue
        m = re.match(r'^backbone\.(\d+)\.(.*)$', key)
        if m:
            rest = _apply(_MOBILEVIG_SVGA_RULES, m[2]) or m[2]
            names[key] = f'stages.{stage}.{int(m[1]) + 1}.{rest}'
        elif key.startswith('stem.stem.'):
            names[key] = _apply(_BACKBONE_RULES, key)
    return names


def reference_backbone_names(keys) -> Dict[str, str]:
    """``{reference name: ours}`` of the reference backbone keys among
    ``keys`` (relative to the backbone), of any family: MobileViG (v1,
    recognised by its ``local_backbone``), MobileViGv2 or GreedyViG (whose
    inverted residuals name their scale ``layer_scale_2``: ours is
    ``layer_scale_1``, as MobileViGv2's)."""
    keys = [k for k in keys if _REFERENCE_BACKBONE_KEY.match(k)]
    if any(k.startswith('local_backbone.') for k in keys):
        return _mobilevig_names(keys)
    names = {k: _apply(_BACKBONE_RULES, k) for k in keys}
    inverted_residuals = {k.split('.dws.')[0] for k in keys if '.dws.' in k}
    for key in keys:
        block, _, name = key.rpartition('.')
        if name == 'layer_scale_2' and block in inverted_residuals:
            names[key] = names[key][:-len('2')] + '1'
    return names


def _reference_value(key: str, value: torch.Tensor) -> torch.Tensor:
    """A reference backbone tensor as ours holds it: GreedyViG's layer
    scales are 1-D (C,), ours (C, 1, 1) as MobileViGv2's."""
    if 'layer_scale' in key and getattr(value, 'dim', lambda: 0)() == 1:
        return value.reshape(-1, 1, 1)
    return value


def convert_backbone_keys_(state_dict: MutableMapping[str, torch.Tensor],
                           prefix: str = '') -> int:
    """Rename the reference backbone keys under ``prefix`` in place.

    ``prefix + 'stem.stem.0.weight'`` becomes ``prefix + 'stem.0.conv.weight'``
    and so on, for a MobileViGv2 or a MobileViG (v1) checkpoint; every other
    key is left alone, so converting twice changes nothing. The order of the
    keys is kept.

    Returns:
        int: How many keys were renamed.
    """
    names = reference_backbone_names(
        k[len(prefix):] for k in state_dict if k.startswith(prefix))
    renamed = {prefix + old: prefix + new for old, new in names.items()}
    if not renamed:
        return 0
    items = [(renamed[k], _reference_value(renamed[k], v)) if k in renamed
             else (k, v) for k, v in state_dict.items()]
    state_dict.clear()
    state_dict.update(items)
    return len(renamed)


# set while a state dict is converted to be checked, not loaded
_CHECKING: ContextVar[bool] = ContextVar('mvig2_mm_checking', default=False)


@contextmanager
def checking() -> Iterator[None]:
    """Within it, the load hooks convert without saying so (a state dict is
    converted to be checked, not loaded)."""
    token = _CHECKING.set(True)
    try:
        yield
    finally:
        _CHECKING.reset(token)


def _say_converted(count: int, what: str, prefix: str) -> None:
    if count and not _CHECKING.get():
        MMLogger.get_current_instance().info(
            f"Converted {count} {what} keys from the authors' layout while "
            f"loading{f' (under {prefix!r})' if prefix else ''}")


def convert_backbone_on_load_(state_dict: MutableMapping[str, torch.Tensor],
                              prefix: str = '') -> int:
    """:func:`convert_backbone_keys_` as the backbones' load pre-hook runs
    it: the conversion is logged."""
    count = convert_backbone_keys_(state_dict, prefix)
    _say_converted(count, 'backbone', prefix)
    return count


def convert_reference_state_dict(state_dict: Mapping[str, torch.Tensor],
                                 backbone_prefix: str = 'backbone.',
                                 head_prefix: str = 'head.') -> StateDict:
    """Convert a reference MobileViGv2 or MobileViG classifier's state
    dict (the two share their classifier's layout).

    Pure and idempotent: a dict with no reference keys is returned as a
    shallow copy, unchanged. Keys that belong to neither the backbone nor the
    classifier are kept as they are (a strict load reports them).

    Args:
        state_dict (Mapping[str, Tensor]): Reference ``state_dict`` (or
            ``state_dict_ema``); a ``module.`` prefix is removed.
        backbone_prefix (str): Prefix of the backbone keys. The default fits
            an mmpretrain ``ImageClassifier``; ``''`` gives bare backbone keys.
        head_prefix (str): Prefix of the classifier head keys.

    Returns:
        OrderedDict[str, Tensor]: The converted state dict.
    """
    if not is_reference_layout(state_dict):
        return OrderedDict(state_dict)
    state_dict = OrderedDict((_strip_module(k), v)
                             for k, v in state_dict.items())
    backbone = reference_backbone_names(state_dict)
    converted: StateDict = OrderedDict()
    for key, value in state_dict.items():
        if key in backbone:
            converted[backbone_prefix + backbone[key]] = _reference_value(
                backbone[key], value)
            continue
        new = _apply(_HEAD_RULES, key)
        if new is not None:
            if new.startswith(('fc.weight', 'fc_dist.weight')) and \
                    value.dim() == 4:
                value = value.flatten(1)  # 1x1 conv -> linear
            converted[head_prefix + new] = value
            continue
        converted[key] = value
    return converted


def convert_reference_classifier_(
        state_dict: MutableMapping[str, torch.Tensor],
        prefix: str = '') -> int:
    """Convert a whole reference classifier's keys under ``prefix`` in place
    (see :func:`convert_reference_state_dict`), for an mmpretrain classifier
    whose backbone and head sit under ``prefix + 'backbone.'`` and
    ``prefix + 'head.'``. Other dicts are left alone.

    Returns:
        int: How many keys were converted.
    """
    local = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                        if k.startswith(prefix))
    if not is_reference_layout(local):
        return 0
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]
    state_dict.update((prefix + k, v)
                      for k, v in convert_reference_state_dict(local).items())
    _say_converted(len(local), 'classifier', prefix)
    return len(local)


def guess_task(state_dict: Mapping[str, object]) -> Optional[str]:
    """``'detection'``, ``'segmentation'`` or ``'classification'`` from the
    top-level modules of a state dict (reference or converted), or None."""
    keys = [_strip_module(k) for k in state_dict]
    for task, prefixes in TASK_PREFIXES.items():
        if any(k.startswith(prefixes) for k in keys):
            return task
    if any(_REFERENCE_KEY.match(k) for k in keys):
        return 'classification'
    return None


def dataset_meta_of(meta: Mapping) -> Optional[dict]:
    """The mmengine ``dataset_meta`` of a checkpoint's ``meta``: its own, or
    one made from the ``CLASSES`` (and ``PALETTE``) that mmdet 2.x and mmseg
    0.x saved. None when the file names no classes."""
    if meta.get('dataset_meta'):
        return dict(meta['dataset_meta'])
    if not meta.get('CLASSES'):
        return None
    dataset_meta = dict(classes=tuple(meta['CLASSES']))
    if meta.get('PALETTE') is not None:
        dataset_meta['palette'] = [list(map(int, c)) for c in meta['PALETTE']]
    return dataset_meta


#: Where a training checkpoint keeps its EMA weights (timm-style files).
EMA_KEYS = ('state_dict_ema', 'model_ema')


def has_ema_weights(checkpoint: Mapping) -> bool:
    """Whether a loaded checkpoint file holds EMA weights."""
    return any(isinstance(checkpoint.get(k), Mapping) for k in EMA_KEYS)


def select_state_dict(checkpoint: Mapping, use_ema: bool = False
                      ) -> Dict[str, torch.Tensor]:
    """Pick the weights out of a checkpoint file's content.

    Args:
        checkpoint (Mapping): What ``torch.load`` returned.
        use_ema (bool): Take the EMA weights (``state_dict_ema`` or
            ``model_ema``) when the file has them, as the reference detection
            and segmentation backbones do. A file with one set of weights
            (a converted or an mmengine checkpoint) gives that set.

    Returns:
        dict: The state dict (``module.`` prefixes removed).
    """
    keys = (list(EMA_KEYS) if use_ema else []) + ['state_dict', 'model']
    state_dict = checkpoint
    for key in keys:
        if isinstance(checkpoint.get(key), Mapping):
            state_dict = checkpoint[key]
            break
    return {_strip_module(k): v for k, v in state_dict.items()}


def convert_checkpoint(checkpoint: Mapping, use_ema: bool = False) -> dict:
    """Any published MobileViGv2 file as an mmengine checkpoint.

    Pure and idempotent. The task is recognised from the keys:

    - an ImageNet classifier becomes the state dict of an mmpretrain
      ``ImageClassifier`` / ``DistillImageClassifier`` (``backbone.`` and a
      ``MobileViGv2Head`` under ``head.``);
    - a detector or segmentor keeps its neck and heads (mmdet 2.28 and mmseg
      0.30 name them as mmdet 3.x and mmseg 1.x do) and gets its backbone
      keys converted.

    Args:
        checkpoint (Mapping): The loaded file.
        use_ema (bool): Convert the EMA weights of an ImageNet training
            checkpoint. Defaults to False (``state_dict``, which the
            reference evaluates).

    Returns:
        dict: ``{'state_dict': ..., 'meta': ...}`` with ``meta.task`` and,
        when the file names its classes, ``meta.dataset_meta``.
    """
    if use_ema and not has_ema_weights(checkpoint):
        raise KeyError(f'use_ema=True but the checkpoint has no EMA weights '
                       f'(keys: {sorted(checkpoint)[:8]})')
    state_dict = convert_reference_state_dict(
        select_state_dict(checkpoint, use_ema))
    convert_backbone_keys_(state_dict, 'backbone.')
    meta = dict(checkpoint.get('meta') or {})
    task = guess_task(state_dict)
    if task is not None:
        meta['task'] = task
    dataset_meta = dataset_meta_of(meta)
    if dataset_meta is not None:
        meta['dataset_meta'] = dataset_meta
    return dict(state_dict=state_dict, meta=meta)
