"""Converting reference MobileViGv2 checkpoints to mvig2_mm's layout.

The reference (github.com/SLDGroup/MobileViGv2) names tensors
``stem.stem.*``, ``backbone.{stage}.{block}.*``, ``prediction.*``, ``head.*``
and ``dist_head.*``. mvig2_mm uses OpenMMLab names (``ConvModule`` ``conv`` /
``bn``): a backbone (``stem.*``, ``stages.*``) and, for an mmpretrain
``ImageClassifier``, a ``MobileViGv2Head`` (``embed``, ``fc``, ``fc_dist``).
"""
import re
from collections import OrderedDict
from typing import Dict, Mapping

import torch

StateDict = Dict[str, torch.Tensor]

# A key of the reference layout, and nothing of ours, matches one of these.
_REFERENCE_KEY = re.compile(r'^(stem\.stem\.|backbone\.\d+\.\d+\.|prediction\.'
                            r'|dist_head\.|head\.(weight|bias)$)')

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
    (r'^backbone\.(\d+)\.(\d+)\.mixer\.(fc1|fc2)\.0\.', r'stages.\1.\2.mixer.\3.conv.'),
    (r'^backbone\.(\d+)\.(\d+)\.mixer\.(fc1|fc2)\.1\.', r'stages.\1.\2.mixer.\3.bn.'),
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


def is_reference_layout(state_dict: Mapping[str, object]) -> bool:
    """Whether ``state_dict`` has any key in the reference layout."""
    return any(_REFERENCE_KEY.match(_strip_module(k)) for k in state_dict)


def _strip_module(key: str) -> str:
    return key[len('module.'):] if key.startswith('module.') else key


def _apply(rules, key: str):
    for pattern, repl in rules:
        new, hits = re.subn(pattern, repl, key)
        if hits:
            return new
    return None


def convert_reference_state_dict(state_dict: Mapping[str, torch.Tensor],
                                 backbone_prefix: str = 'backbone.',
                                 head_prefix: str = 'head.') -> StateDict:
    """Convert a reference MobileViGv2 state dict to mvig2_mm's layout.

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
    converted: StateDict = OrderedDict()
    for key, value in state_dict.items():
        key = _strip_module(key)
        new = _apply(_BACKBONE_RULES, key)
        if new is not None:
            converted[backbone_prefix + new] = value
            continue
        new = _apply(_HEAD_RULES, key)
        if new is not None:
            if new.startswith(('fc.weight', 'fc_dist.weight')) and value.dim() == 4:
                value = value.flatten(1)  # 1x1 conv -> linear
            converted[head_prefix + new] = value
            continue
        converted[key] = value
    return converted
