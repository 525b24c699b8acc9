"""What a checkpoint is: the one place that tells.

The task of the file, the family and the form (training or deploy) of the
MobileViG backbone in it, and whether its keys are in the authors'
(reference) layout. The strict check, the tools' pre-flight and the converter
all ask :func:`describe_checkpoint`; the load hooks convert what it
recognises (:mod:`.converter`). The family is decided from what really
differs between the families' checkpoints, never from a file name:

- MobileViG (v1): its flat ``local_backbone`` list and its ``grapher`` /
  ``mlp`` blocks (reference) or ``grapher`` blocks (converted);
- MobileViGv2: ``mixer`` (MGC) blocks, none in stage 0, and ``dws``
  inverted residuals in the reference layout;
- GreedyViG: MobileViGv2's names (once converted) with graph (``mixer``)
  blocks in stage 0.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Iterable, Mapping, Optional

import torch

from .converter import (convert_backbone_keys_, convert_reference_state_dict,
                        guess_task, is_reference_layout, select_state_dict)

#: Key fragments that only one family's backbone keys (reference or
#: converted) hold. Not ``.mlp.``: the reference MobileViG has it only under
#: ``local_backbone.``, and other models have it too (mmpretrain's
#: EfficientFormer, PoolFormer).
FAMILY_MARKERS = {
    'MobileViG': ('local_backbone.', '.grapher.'),
    'MobileViGv2': ('.mixer.', '.dws.'),
}


# a graph block in the first stage (reference or converted names)
_STAGE_0_GRAPH_BLOCK = re.compile(r'^(stages|backbone)\.0\.\d+\.mixer\.')


def checkpoint_family(keys: Iterable[str]) -> Optional[str]:
    """The MobileViG family (its backbone class name) whose backbone keys
    (reference or converted, relative to the backbone) these are, or
    None. GreedyViG's keys are MobileViGv2's (converted, and but for its
    layer scales in the reference layout); what tells them apart is that
    GreedyViG has graph blocks in its first stage."""
    keys = list(keys)
    for name, markers in FAMILY_MARKERS.items():
        if any(m in k for k in keys for m in markers):
            if name == 'MobileViGv2' and any(
                    _STAGE_0_GRAPH_BLOCK.match(k) for k in keys):
                return 'GreedyViG'
            return name
    return None


def checkpoint_form(keys: Iterable[str]) -> Optional[str]:
    """``'training'`` or ``'deploy'``: the form of the MobileViG backbone
    whose keys (converted names, relative to the backbone) are given: the
    training form has BatchNorm layers, the deploy form has them folded into
    the convolutions. None when no backbone key is among them."""
    keys = [k for k in keys if k.startswith(('stem.', 'stages.'))]
    if not keys:
        return None
    return 'training' if any('.bn.' in k for k in keys) else 'deploy'


@dataclass
class CheckpointInfo:
    """What :func:`describe_checkpoint` found.

    Attributes:
        task (str, optional): ``'classification'``, ``'detection'`` or
            ``'segmentation'``; None when the keys do not tell (a bare
            backbone).
        family (str, optional): The backbone's family (class name), or None
            when the file holds no MobileViG backbone.
        form (str, optional): ``'training'`` or ``'deploy'``.
        reference_layout (bool): Whether its keys are in the authors' layout
            (converted when they load).
        backbone (dict): The backbone's tensors, keys converted and relative
            to the backbone (``stem.*``, ``stages.*``).
    """
    task: Optional[str]
    family: Optional[str]
    form: Optional[str]
    reference_layout: bool
    backbone: Dict[str, torch.Tensor] = field(repr=False)


def backbone_state_dict(state_dict: Mapping[str, torch.Tensor],
                        prefix: str = 'backbone.'
                        ) -> 'OrderedDict[str, torch.Tensor]':
    """The tensors under ``prefix`` (a whole model's backbone), or the whole
    dict when it is a bare backbone (``stem.*`` keys at the root)."""
    if not any(k.startswith(prefix) for k in state_dict) and any(
            k.startswith('stem.') for k in state_dict):
        return OrderedDict(state_dict)
    return OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                       if k.startswith(prefix))


def describe_checkpoint(checkpoint: Mapping,
                        prefix: str = 'backbone.') -> CheckpointInfo:
    """Describe a loaded checkpoint file (or a state dict) of any supported
    layout: an mmengine checkpoint, a published ImageNet, COCO or ADE20K
    file, a bare backbone.

    Args:
        checkpoint (Mapping): What ``torch.load`` returned, or a state dict.
        prefix (str): Where a whole model keeps its backbone.
    """
    state_dict = select_state_dict(checkpoint)
    reference = is_reference_layout(state_dict)
    converted = convert_reference_state_dict(state_dict)
    reference = bool(convert_backbone_keys_(converted, prefix)) or reference
    backbone = backbone_state_dict(converted, prefix)
    family = checkpoint_family(backbone)
    return CheckpointInfo(
        task=guess_task(converted), family=family,
        form=checkpoint_form(backbone) if family else None,
        reference_layout=reference, backbone=dict(backbone))
