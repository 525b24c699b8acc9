"""What a model in a runtime predicts on labelled images
(:func:`~.calibration.labelled_images`), and how right it is: the classes
of a classifier (top-1) and the per-pixel classes of a segmentor (mIoU, as
mmseg's ``IoUMetric`` computes it).

A runtime's forward is any function of an input batch (1, 3, H, W) to its
outputs (a tensor, an array, or a list of them; the first is the logits),
e.g. a :class:`~.runtimes.Deployed` model's ``run`` or the float model
itself. Agreement with the float model is the same measure taken against
the float model's predictions instead of the labels.
"""
from typing import Callable, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ['accuracy', 'agreement', 'first_output', 'predict']

#: A runtime's forward: an input batch -> its outputs.
Forward = Callable[[torch.Tensor], object]
#: An input batch (1, 3, H, W) and its label: a class index or a label map.
Labelled = Tuple[torch.Tensor, Union[int, torch.Tensor]]


def first_output(outputs) -> np.ndarray:
    """A runtime's first output as an array."""
    if isinstance(outputs, (list, tuple)):
        outputs = outputs[0]
    return outputs.numpy() if torch.is_tensor(outputs) else np.asarray(outputs)


def predict(forward: Forward, labelled: Sequence[Labelled],
            align_corners: bool = False) -> list:
    """What ``forward`` predicts for each labelled input (batch 1): a class
    index where the labels are classes (a classifier's logits), a class map
    (H, W) where they are label maps (a segmentor's per-pixel logits,
    :class:`~.models.SegLogits`; resized bilinearly to the label's size
    first where they differ, as mmseg's ``postprocess_result`` does, with
    the segmentor's ``align_corners``)."""
    predicted = []
    with torch.no_grad():
        for x, label in labelled:
            logits = torch.as_tensor(first_output(forward(x)))
            if isinstance(label, int):
                predicted.append(int(logits.argmax()))
                continue
            if tuple(logits.shape[2:]) != tuple(label.shape):
                logits = F.interpolate(logits, size=tuple(label.shape),
                                       mode='bilinear',
                                       align_corners=align_corners)
            predicted.append(logits[0].argmax(0))
    return predicted


def accuracy(predicted: list, labels: list, num_classes: int = 0,
             ignore_index: int = 255) -> float:
    """The accuracy (%) of :func:`predict`'s predictions: top-1 of classes;
    mIoU of class maps, as mmseg's ``IoUMetric`` computes it (areas summed
    over the images first; classes absent from both left out).

    Args:
        predicted (list): Classes or class maps.
        labels (list): Their labels.
        num_classes (int): The number of classes (for maps).
        ignore_index (int): The label of map pixels not counted.
    """
    if not torch.is_tensor(labels[0]):
        return agreement(predicted, labels)
    from mmseg.evaluation.metrics import IoUMetric
    areas = [IoUMetric.intersect_and_union(p, t, num_classes, ignore_index)
             for p, t in zip(predicted, labels)]
    totals = [sum(area[i] for area in areas) for i in range(4)]
    metrics = IoUMetric.total_area_to_metrics(*totals, ['mIoU'])
    return 100. * float(np.nanmean(metrics['IoU']))


def agreement(predicted: list, expected: list) -> float:
    """The share (%) of predictions (classes, or the pixels of class maps)
    equal to ``expected`` (labels, or another runtime's predictions)."""
    if not torch.is_tensor(expected[0]):
        return 100. * sum(p == e for p, e in zip(predicted, expected)) / len(
            expected)
    same = sum(int((p == e).sum()) for p, e in zip(predicted, expected))
    return 100. * same / sum(e.numel() for e in expected)
