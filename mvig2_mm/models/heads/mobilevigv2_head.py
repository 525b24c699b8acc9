"""The MobileViGv2 classifier head (mmpretrain)."""
from typing import List, Optional, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpretrain.models.heads import ClsHead
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from ...errors import ConfigError
from ..backbones.base import conv_norm
from ..utils.fusion import fold_conv_module


@MODELS.register_module()
class MobileViGv2Head(ClsHead):
    """Classifier head of MobileViGv2 with a distillation token head.

    Global average pool, 1x1 conv to ``emb_dims`` with norm and activation,
    dropout, then two linear classifiers: ``fc`` (trained on labels) and
    ``fc_dist`` (trained on a teacher's hard labels, DeiT-style). In eval
    mode the prediction is the mean of both, as in the reference.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Channels of the last backbone stage.
        emb_dims (int): Embedding width. Defaults to 512.
        dropout (float): Dropout before the classifiers. Defaults to 0.
        distillation (bool): Build ``fc_dist``. Defaults to True.
        norm_cfg (dict): Norm config of the embedding.
            Defaults to ``dict(type='BN')``.
        act_cfg (dict): Activation of the embedding.
            Defaults to ``dict(type='GELU')``.
        deploy (bool): Inference form: the norm folded into the embedding and
            ``fc``/``fc_dist`` merged into one ``fc``. Defaults to False.
        init_cfg (dict, optional): Initialisation config.
        **kwargs: ``loss``, ``topk``, ``cal_acc`` of :class:`ClsHead`.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int,
                 emb_dims: int = 512,
                 dropout: float = 0.,
                 distillation: bool = True,
                 norm_cfg: dict = dict(type='BN'),
                 act_cfg: dict = dict(type='GELU'),
                 deploy: bool = False,
                 init_cfg: Optional[dict] = dict(
                     type='Kaiming', layer='Conv2d', mode='fan_in',
                     nonlinearity='leaky_relu', distribution='normal',
                     bias=0.),
                 **kwargs) -> None:
        super().__init__(init_cfg=init_cfg, **kwargs)
        if num_classes <= 0:
            raise ConfigError(
                f'num_classes must be positive, got {num_classes}')
        self.num_classes = num_classes
        self.distillation = distillation
        self.deploy = deploy
        self.embed = conv_norm(in_channels, emb_dims, 1, norm_cfg, act_cfg,
                               deploy)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(emb_dims, num_classes)
        if distillation and not deploy:
            self.fc_dist = nn.Linear(emb_dims, num_classes)

    def pre_logits(self, feats: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Pooled, embedded features of the last stage, shape (N, emb_dims)."""
        x = F.adaptive_avg_pool2d(feats[-1], 1)
        return self.dropout(self.embed(x)).flatten(1)

    def forward_logits(self, feats: Tuple[torch.Tensor, ...]
                       ) -> Union[torch.Tensor,
                                  Tuple[torch.Tensor, torch.Tensor]]:
        """``(cls_logits, dist_logits)`` with distillation, else logits."""
        x = self.pre_logits(feats)
        if self.distillation and not self.deploy:
            return self.fc(x), self.fc_dist(x)
        return self.fc(x)

    def forward(self, feats: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Logits for prediction: the mean of both classifiers."""
        logits = self.forward_logits(feats)
        if isinstance(logits, tuple):
            return (logits[0] + logits[1]) / 2
        return logits

    def loss(self, feats: Tuple[torch.Tensor, ...],
             data_samples: List[DataSample], **kwargs) -> dict:
        """Losses of both classifiers.

        ``fc`` learns from the labels. ``fc_dist`` learns from the teacher's
        hard labels when the data samples carry them (``teacher_label``, set
        by :class:`~mvig2_mm.models.classifiers.DistillImageClassifier`), and
        from the labels otherwise.
        """
        logits = self.forward_logits(feats)
        if not isinstance(logits, tuple):
            return super().loss(feats, data_samples, **kwargs)
        cls_logits, dist_logits = logits
        losses = self._get_loss(cls_logits, data_samples, **kwargs)
        # 'loss_cls', not 'loss': mmengine logs the total under 'loss'
        loss_cls = losses.pop('loss')
        if all('teacher_label' in s for s in data_samples):
            teacher = torch.stack([s.teacher_label for s in data_samples])
            loss_dist = F.cross_entropy(dist_logits, teacher.to(
                dist_logits.device))
        else:
            loss_dist = self._get_loss(dist_logits, data_samples,
                                       **kwargs)['loss']
        # DeiT hard distillation: (1 - a) * cls + a * dist with a = 0.5
        losses['loss_cls'] = loss_cls * 0.5
        losses['loss_dist'] = loss_dist * 0.5
        return losses

    @torch.no_grad()
    def switch_to_deploy(self) -> None:
        """Fold the norm and merge both classifiers (inference only)."""
        if self.deploy:
            return
        self.embed = fold_conv_module(self.embed)
        if self.distillation:
            self.fc.weight.add_(self.fc_dist.weight).div_(2)
            self.fc.bias.add_(self.fc_dist.bias).div_(2)
            del self.fc_dist
        self.deploy = True
