"""DeiT-style hard distillation for mmpretrain image classifiers."""
import copy
import os.path as osp
from typing import List, Optional

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmpretrain.models.classifiers import ImageClassifier
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ...errors import ConfigError
from ...weights import (convert_reference_classifier_, load_checkpoint_file,
                        select_state_dict)

NO_TEACHER_HINT = (
    'To train without distillation (both classifiers of the head learn from '
    'the labels) set the teacher to None, e.g. '
    '`--cfg-options model.teacher=None`; see '
    'configs/classification/README.md.')


class _Detached:
    """Holds a module outside its owner's module tree.

    The teacher must not be a submodule: it would be saved in the student's
    checkpoints, handed to the optimizer, averaged by the EMA hook, wrapped by
    DDP and switched to train mode with the student. ``deepcopy`` (the EMA
    hook copies the whole model) shares the holder instead of copying the
    teacher.
    """

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __deepcopy__(self, memo: dict) -> '_Detached':
        return self


def _check_teacher_cfg(teacher: dict) -> None:
    """Raise on a teacher config that cannot work; nothing is built or read
    (a config error is reported before a missing file)."""
    if not isinstance(teacher, dict):
        raise ConfigError(f'teacher must be a dict or None, got '
                          f'{type(teacher).__name__}')
    unknown = set(teacher) - {'config', 'model', 'checkpoint'}
    if ('config' in teacher) == ('model' in teacher) or unknown:
        raise ConfigError(
            "teacher must be dict(config=..., checkpoint=...) or "
            f"dict(model=..., checkpoint=...), got keys {sorted(teacher)}")
    if not teacher.get('checkpoint'):
        raise ConfigError(
            'teacher needs a checkpoint (path or URL of its trained '
            'weights): a randomly initialised teacher only adds noise. '
            + NO_TEACHER_HINT)


def _build_teacher(teacher: dict) -> nn.Module:
    """The frozen model of a checked teacher config. Its weights come from
    its checkpoint, and it takes the student's preprocessed batch (its own
    data preprocessor is not used)."""
    if 'config' in teacher:
        # ``Config._get_cfg_path`` resolves 'package::path' as ``_base_``
        # does; a plain path is returned as it is.
        path, _ = Config._get_cfg_path(teacher['config'], '')
        model_cfg = Config.fromfile(path).model
    else:
        model_cfg = teacher['model']
    model = MODELS.build(copy.deepcopy(model_cfg))
    model.eval()
    model.requires_grad_(False)
    return model


@MODELS.register_module()
class DistillImageClassifier(ImageClassifier):
    """An :class:`ImageClassifier` distilled from a frozen teacher, DeiT-style.

    During training the teacher (in eval mode, without gradients) classifies
    the same batch the student sees, after the batch augmentations (mixup /
    cutmix). Its arg-max is stored as ``teacher_label`` on every data sample
    before the head's ``loss`` runs; a head with a distillation classifier
    (:class:`~mvig2_mm.models.heads.MobileViGv2Head`) trains that classifier
    on these hard labels (DeiT's "hard distillation").

    The teacher is kept outside the module tree: the student's state dict,
    parameters, EMA copy and checkpoints hold only the student, so they load
    into a plain :class:`ImageClassifier` with the same backbone and head.
    Only training needs the teacher: the first :meth:`loss` (or
    :meth:`load_teacher`) builds it and loads its weights, so a classifier
    built for evaluation, export or inference never builds it nor reads (or
    downloads) its checkpoint. Its config is checked when the classifier is
    built.

    Args:
        backbone (dict): The backbone config.
        neck (dict, optional): The neck config. Defaults to None.
        head (dict, optional): The head config. Defaults to None.
        teacher (dict, optional): The teacher:
            ``dict(config=..., checkpoint=...)`` with the path of an
            mmpretrain config (``'mmpretrain::...'`` allowed) whose ``model``
            is built, or ``dict(model=..., checkpoint=...)`` with a model
            config. ``checkpoint`` is a path or URL of the teacher's weights
            (an mmengine checkpoint, or a file with ``state_dict``/``model``
            or bare weights). The teacher must take the student's normalised
            inputs and return logits over the same classes from
            ``teacher(inputs, mode='tensor')``, as every mmpretrain
            classifier does. None trains without distillation.
            Defaults to None.
        **kwargs: ``pretrained``, ``train_cfg``, ``data_preprocessor`` and
            ``init_cfg`` of :class:`ImageClassifier`.

    Example:
        >>> model = dict(
        ...     type='DistillImageClassifier',
        ...     backbone=dict(type='MobileViGv2', arch='ti'),
        ...     head=dict(type='MobileViGv2Head', num_classes=1000,
        ...               in_channels=256, emb_dims=512),
        ...     teacher=dict(
        ...         config='mmpretrain::convnext/'
        ...                'convnext-small_32xb128_in1k.py',
        ...         checkpoint='checkpoints/convnext-small_in1k.pth'))
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 teacher: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(backbone=backbone, neck=neck, head=head, **kwargs)
        self.teacher_cfg = copy.deepcopy(teacher)
        self._teacher: Optional[_Detached] = None
        if teacher is not None:
            _check_teacher_cfg(teacher)
            if not getattr(self.head, 'distillation', False):
                raise ConfigError(
                    f'A teacher needs a head with a distillation classifier '
                    f'that learns from `teacher_label` (MobileViGv2Head with '
                    f'distillation=True), got {type(self.head).__name__}'
                    + (' with distillation=False' if self.head is not None
                       and hasattr(self.head, 'distillation') else '') + '.')
        # The published ImageNet files (reference layout) load as they are,
        # through every loader (PyTorch's, mmengine's, the inferencers').
        self._register_load_state_dict_pre_hook(self._convert_reference_keys)

    @staticmethod
    def _convert_reference_keys(state_dict, prefix, *args) -> None:
        """Load pre-hook: a reference classifier's keys become ours."""
        convert_reference_classifier_(state_dict, prefix)

    @property
    def with_teacher(self) -> bool:
        """Whether the classifier distils from a teacher when it trains."""
        return self.teacher_cfg is not None

    @property
    def teacher(self) -> Optional[nn.Module]:
        """The frozen teacher once built (by the first :meth:`loss` or by
        :meth:`load_teacher`), else None."""
        return None if self._teacher is None else self._teacher.module

    def load_teacher(self) -> nn.Module:
        """Build the teacher and load ``teacher.checkpoint`` into it
        (strictly), once; return it."""
        if self._teacher is not None:
            return self._teacher.module
        if self.teacher_cfg is None:
            raise RuntimeError('this classifier has no teacher (teacher=None)')
        checkpoint = self.teacher_cfg['checkpoint']
        teacher = _build_teacher(self.teacher_cfg)
        try:
            content = load_checkpoint_file(checkpoint)
        except FileNotFoundError:
            raise FileNotFoundError(
                f'Teacher checkpoint not found: {checkpoint!r}. Point '
                f'model.teacher.checkpoint at the trained teacher (see '
                f'configs/classification/README.md). {NO_TEACHER_HINT}'
            ) from None
        except Exception as e:  # e.g. a URL that cannot be downloaded
            raise RuntimeError(
                f'Could not load the teacher checkpoint {checkpoint!r}: {e}. '
                f'{NO_TEACHER_HINT}') from e
        try:
            teacher.load_state_dict(select_state_dict(content), strict=True)
        except RuntimeError as e:
            raise RuntimeError(
                f'The teacher checkpoint {checkpoint!r} does not fit the '
                f'teacher model {type(teacher).__name__}: {e}') from None
        self._teacher = _Detached(teacher)
        MMLogger.get_current_instance().info(
            f'Loaded the distillation teacher from {checkpoint}')
        return teacher

    @torch.no_grad()
    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for a preprocessed batch (building and
        loading the teacher first, once)."""
        teacher = self.load_teacher()
        param = next(teacher.parameters(), None)
        if param is not None and param.device != inputs.device:
            teacher.to(inputs.device)
        teacher.eval()
        logits = teacher(inputs, mode='tensor')
        num_classes = getattr(self.head, 'num_classes', None)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or (
                num_classes is not None and logits.shape[1] != num_classes):
            raise ConfigError(
                f'The teacher must return (N, {num_classes or "num_classes"})'
                f" logits from teacher(inputs, mode='tensor'), got "
                f'{getattr(logits, "shape", type(logits).__name__)}')
        return logits

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        """Set the teacher's hard labels on the samples, then the head's
        losses (``loss`` and, with a distillation head, ``loss_dist``)."""
        if self.with_teacher:
            labels = self.teacher_logits(inputs).argmax(dim=1)
            for sample, label in zip(data_samples, labels):
                sample.set_field(label, 'teacher_label', field_type='data')
        return super().loss(inputs, data_samples)

    def extra_repr(self) -> str:
        if self.teacher_cfg is None:
            return 'teacher=None'
        source = self.teacher_cfg.get('config') or self.teacher_cfg[
            'model'].get('type')
        return (f'teacher={source} (frozen, built when training; checkpoint '
                f'{osp.basename(str(self.teacher_cfg["checkpoint"]))})')
