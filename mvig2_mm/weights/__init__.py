"""Weights: what a checkpoint is (:mod:`.checkpoint_info`), the one
converter of published checkpoints and the one strict loader that every
model and tool uses. Imports nothing of the models."""
from .checkpoint_info import (CheckpointInfo, checkpoint_family,
                              checkpoint_form, describe_checkpoint)
from .converter import (convert_backbone_keys_, convert_backbone_on_load_,
                        convert_checkpoint, convert_reference_classifier_,
                        convert_reference_state_dict, dataset_meta_of,
                        guess_task, is_reference_layout, select_state_dict)
from .loading import (CheckpointMismatchError, check_checkpoint, describe_arch,
                      load_checkpoint_file, load_checkpoint_strictly,
                      load_pretrained, pretrained_cfg)

__all__ = [
    'CheckpointInfo', 'checkpoint_family', 'checkpoint_form',
    'describe_checkpoint', 'convert_backbone_keys_',
    'convert_backbone_on_load_', 'convert_checkpoint',
    'convert_reference_classifier_', 'convert_reference_state_dict',
    'dataset_meta_of', 'guess_task', 'is_reference_layout',
    'select_state_dict', 'CheckpointMismatchError', 'check_checkpoint',
    'describe_arch', 'load_checkpoint_file', 'load_checkpoint_strictly',
    'load_pretrained', 'pretrained_cfg'
]
