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
    It is built in ``__init__`` and its weights are loaded by
    :meth:`init_weights` (which the Runner calls when training starts), so
    evaluating with a distillation config never needs the teacher's file.

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
        self._teacher_loaded = False
        if teacher is not None:
            if not getattr(self.head, 'distillation', False):
                raise ValueError(
                    f'A teacher needs a head with a distillation classifier '
                    f'that learns from `teacher_label` (MobileViGv2Head with '
                    f'distillation=True), got {type(self.head).__name__}'
                    + (' with distillation=False' if self.head is not None
                       and hasattr(self.head, 'distillation') else '') + '.')
            self._teacher = _Detached(self._build_teacher(teacher))
        # The published ImageNet files (reference layout) load as they are,
        # through every loader (PyTorch's, mmengine's, the inferencers').
        self._register_load_state_dict_pre_hook(self._convert_reference_keys)

    @staticmethod
    def _convert_reference_keys(state_dict, prefix, *args) -> None:
        """Load pre-hook: a reference classifier's keys become ours."""
        convert_reference_classifier_(state_dict, prefix)

    @property
    def teacher(self) -> Optional[nn.Module]:
        """The frozen teacher, or None without distillation."""
        return None if self._teacher is None else self._teacher.module

    @property
    def with_teacher(self) -> bool:
        return self._teacher is not None

    @staticmethod
    def _build_teacher(teacher: dict) -> nn.Module:
        if not isinstance(teacher, dict):
            raise TypeError(f'teacher must be a dict or None, got '
                            f'{type(teacher).__name__}')
        unknown = set(teacher) - {'config', 'model', 'checkpoint'}
        if ('config' in teacher) == ('model' in teacher) or unknown:
            raise ValueError(
                "teacher must be dict(config=..., checkpoint=...) or "
                f"dict(model=..., checkpoint=...), got keys {sorted(teacher)}")
        if not teacher.get('checkpoint'):
            raise ValueError(
                'teacher needs a checkpoint (path or URL of its trained '
                'weights): a randomly initialised teacher only adds noise. '
                + NO_TEACHER_HINT)
        if 'config' in teacher:
            # ``Config._get_cfg_path`` resolves 'package::path' as ``_base_``
            # does; a plain path is returned as it is.
            path, _ = Config._get_cfg_path(teacher['config'], '')
            model_cfg = Config.fromfile(path).model
        else:
            model_cfg = teacher['model']
        # Only built: its weights come from its checkpoint (init_weights), and
        # it takes the student's preprocessed batch (its own data
        # preprocessor is not used).
        model = MODELS.build(copy.deepcopy(model_cfg))
        model.eval()
        model.requires_grad_(False)
        return model

    def init_weights(self) -> None:
        """Initialise the student and load the teacher's checkpoint."""
        super().init_weights()
        if self._teacher is not None and not self._teacher_loaded:
            self.load_teacher()

    def load_teacher(self) -> None:
        """Load ``teacher.checkpoint`` into the teacher (strictly)."""
        checkpoint = self.teacher_cfg['checkpoint']
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
        state_dict = select_state_dict(content)
        try:
            self.teacher.load_state_dict(state_dict, strict=True)
        except RuntimeError as e:
            raise RuntimeError(
                f'The teacher checkpoint {checkpoint!r} does not fit the '
                f'teacher model {type(self.teacher).__name__}: {e}') from None
        self.teacher.eval()
        self._teacher_loaded = True
        MMLogger.get_current_instance().info(
            f'Loaded the distillation teacher from {checkpoint}')

    @torch.no_grad()
    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """The teacher's logits for a preprocessed batch."""
        if not self._teacher_loaded:
            raise RuntimeError(
                'The distillation teacher has no weights yet: call '
                'init_weights() (the Runner does so when training starts) or '
                'load_teacher() first.')
        teacher = self.teacher
        param = next(teacher.parameters(), None)
        if param is not None and param.device != inputs.device:
            teacher.to(inputs.device)
        teacher.eval()
        logits = teacher(inputs, mode='tensor')
        num_classes = getattr(self.head, 'num_classes', None)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or (
                num_classes is not None and logits.shape[1] != num_classes):
            raise ValueError(
                f'The teacher must return (N, {num_classes or "num_classes"})'
                f" logits from teacher(inputs, mode='tensor'), got "
                f'{getattr(logits, "shape", type(logits).__name__)}')
        return logits

    def loss(self, inputs: torch.Tensor,
             data_samples: List[DataSample]) -> dict:
        """Set the teacher's hard labels on the samples, then the head's
        losses (``loss`` and, with a distillation head, ``loss_dist``)."""
        if self._teacher is not None:
            labels = self.teacher_logits(inputs).argmax(dim=1)
            for sample, label in zip(data_samples, labels):
                sample.set_field(label, 'teacher_label', field_type='data')
        return super().loss(inputs, data_samples)

    def extra_repr(self) -> str:
        if self._teacher is None:
            return 'teacher=None'
        source = self.teacher_cfg.get('config') or self.teacher_cfg[
            'model'].get('type')
        return (f'teacher={source} (frozen; checkpoint '
                f'{osp.basename(str(self.teacher_cfg["checkpoint"]))})')
