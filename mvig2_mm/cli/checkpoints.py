"""Checkpoint checks of the tools: reading a file in one line's worth of
error, the training vs deploy form of its backbone, and a Runner hook that
stops before a checkpoint that does not fit the model is loaded."""
import os.path as osp
from typing import Mapping, Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..weights import check_checkpoint, describe_checkpoint


def first_line(exc: BaseException) -> str:
    """An exception's message, one line (``KeyError`` without its quotes)."""
    text = exc.args[0] if len(exc.args) == 1 and isinstance(
        exc.args[0], str) else str(exc)
    lines = [line.strip() for line in text.strip().splitlines()
             if line.strip()]
    return lines[0] if lines else type(exc).__name__


def read_checkpoint(path: str):
    """Load a local checkpoint file, memory-mapped (only what is used is
    read); raises ``ValueError`` with one line when it cannot be read."""
    try:
        try:
            return torch.load(path, map_location='cpu', mmap=True,
                              weights_only=True)
        except RuntimeError as e:  # not a zip file: no mmap
            if 'zip' not in str(e) and 'mmap' not in str(e):
                raise
            return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001 (one line for any reader error)
        text = str(e)
        if 'WeightsUnpickler error:' in text:  # torch's long explanation
            detail = text.split('WeightsUnpickler error:', 1)[1].split(
                'Check the documentation')[0]
            reason = 'weights_only loading refused it: ' + ' '.join(
                detail.split())
        else:
            reason = first_line(e)
        raise ValueError(f'cannot load checkpoint {path}: {reason}') from None


class StrictLoadHook(Hook):
    """Stops the run before a checkpoint that does not fit the model is
    loaded: mmengine would only log the mismatch and go on with random
    weights (:func:`~mvig2_mm.weights.check_checkpoint`)."""

    priority = 'VERY_HIGH'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        check_checkpoint(model, checkpoint,
                         f'checkpoint {runner._load_from}')


def backbone_form_mismatch(model_cfg: Mapping,
                           checkpoint: str) -> Optional[str]:
    """Why a local checkpoint does not fit the MobileViG backbone that
    ``model_cfg`` builds (another family, or the other form: training or
    deploy), or None if it fits or cannot be told (no MobileViG backbone, a
    URL, other key names). What the file is comes from
    :func:`~mvig2_mm.weights.describe_checkpoint`.

    mmengine's Runner loads checkpoints non-strictly: a deploy-form
    checkpoint in a training-form model (or the other way round) would only
    log missing keys and then predict with random weights.
    """
    from ..models.backbones import BACKBONES
    backbone = model_cfg.get('backbone') or {}
    family = backbone.get('type')
    if family not in BACKBONES or not osp.isfile(checkpoint):
        return None
    try:  # memory-mapped: only what is asked for is read
        content = read_checkpoint(checkpoint)
    except ValueError:  # reported where the file is loaded
        return None
    if not isinstance(content, Mapping):
        return None
    info = describe_checkpoint(content)
    name = osp.basename(checkpoint)
    if info.family and info.family != family:
        return (f'{name} holds a {info.family} backbone but the config '
                f'builds {family}: use a {info.family} config')
    deploy = backbone.get('deploy', False)
    if deploy and info.form == 'training':
        return (f'{name} holds the training form of the {family} backbone '
                f'(BatchNorm, layer scales) but the config builds its deploy '
                f'form (model.backbone.deploy=True): use the training config, '
                f'or convert the checkpoint with '
                f'tools/model_converters/reparameterize_model.py')
    if not deploy and info.form == 'deploy':
        return (f'{name} holds the deploy form of the {family} backbone '
                f'(norms folded into its convolutions): add --cfg-options '
                f'model.backbone.deploy=True (classifiers: use the config in '
                f'configs/classification/deploy/)')
    return None
