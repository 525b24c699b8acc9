"""Converting an export model (:mod:`.models`) to a Core ML program, and
checking the converted model's inputs and outputs.

An RGB picture input (Core ML's ``ImageType``) computes
``pixel * scale + bias[c]`` with one scale for the three channels; the
model's normalisation ``(pixel - mean[c]) / std[c]`` is folded in as that
scale and bias and, for the per-channel rest of ``1 / std``, into the first
convolution's weights (exact): :func:`image_scale_and_bias`,
:func:`fold_channel_scale`. Needs ``coremltools``; running a prediction
needs macOS.
"""
import copy
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from .models import Logits, SegLogits, exportable, output_names

__all__ = [
    'Probabilities', 'check', 'convert', 'fold_channel_scale',
    'image_scale_and_bias', 'spec_shapes'
]


class Probabilities(nn.Module):
    """A classifier's softmax scores (what Core ML's classifiers return).

    Args:
        logits (Logits): The classifier.
    """

    def __init__(self, logits: Logits) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).softmax(dim=1)


def image_scale_and_bias(mean: Sequence[float], std: Sequence[float]
                         ) -> Tuple[float, List[float], List[float]]:
    """Core ML's image scale and bias for a normalisation.

    Args:
        mean (Sequence[float]): Per-channel mean, in pixel units.
        std (Sequence[float]): Per-channel standard deviation.

    Returns:
        tuple: ``(scale, bias, rest)`` with ``scale = 1 / mean(std)``,
        ``bias = -mean * scale`` and ``rest[c] = mean(std) / std[c]``, so
        that ``(pixel * scale + bias[c]) * rest[c] == (pixel - mean[c]) /
        std[c]``.
    """
    std_mean = sum(std) / len(std)
    scale = 1 / std_mean
    return (scale, [-m * scale for m in mean],
            [std_mean / s for s in std])


def fold_channel_scale(model: nn.Module, rest: Sequence[float]) -> nn.Module:
    """A copy of ``model`` whose first convolution multiplies its input
    channel ``c`` by ``rest[c]`` (folded into its weights: exact); the
    model itself is not changed."""
    model = copy.deepcopy(model)
    conv = next(m for m in model.modules()
                if isinstance(m, nn.Conv2d) and m.in_channels == len(rest))
    with torch.no_grad():
        conv.weight.mul_(torch.tensor(rest).reshape(1, -1, 1, 1))
    return model


def convert(model: nn.Module, shape: Tuple[int, int],
            precision: str = 'float16', image: Optional[dict] = None):
    """Trace ``model`` at (1, 3, H, W) and convert it to a Core ML program.

    Args:
        model (nn.Module): An export model, in eval mode (not changed).
        shape (tuple[int, int]): The input's height and width (fixed).
        precision (str): ``'float16'`` or ``'float32'`` compute precision.
        image (dict, optional): For an RGB picture input: ``mean``, ``std``
            (in pixel units) and, for a classifier, ``classes``; then a
            classifier returns ``classLabel`` and its classes' scores.
            None: a float tensor input ``input``.

    Returns:
        coremltools.models.MLModel: The converted program.
    """
    import coremltools as ct
    model = copy.deepcopy(model)  # the fixed size below stays with the copy
    example = torch.zeros(1, 3, *shape)
    names = output_names(model)
    inputs = [ct.TensorType(name='input', shape=example.shape)]
    classifier = None
    if image is not None:
        scale, bias, rest = image_scale_and_bias(image['mean'], image['std'])
        model = fold_channel_scale(model, rest)
        inputs = [ct.ImageType(name='image', shape=example.shape,
                               scale=scale, bias=bias,
                               color_layout=ct.colorlayout.RGB)]
        if isinstance(model, Logits):
            model, names = Probabilities(model).eval(), ['probabilities']
            classifier = ct.ClassifierConfig(
                list(image['classes']), predicted_feature_name='classLabel')
    for module in model.modules():  # Core ML graphs have a fixed size
        if isinstance(module, SegLogits):
            module.fixed_size = tuple(shape)
    with torch.no_grad(), warnings.catch_warnings(), exportable(model):
        warnings.filterwarnings('ignore', category=torch.jit.TracerWarning)
        traced = torch.jit.trace(model, example)
    return ct.convert(
        traced, inputs=inputs,
        outputs=[ct.TensorType(name=name) for name in names],
        classifier_config=classifier, convert_to='mlprogram',
        compute_precision=(ct.precision.FLOAT16 if precision == 'float16'
                           else ct.precision.FLOAT32))


def spec_shapes(mlmodel) -> Tuple[Dict[str, list], Dict[str, list]]:
    """The inputs and outputs of a converted model's spec.

    Returns:
        tuple[dict, dict]: (inputs, outputs), name -> shape (an image:
        ``['RGB', H, W]``; a class label or probabilities: its type).
    """
    description = mlmodel.get_spec().description

    def shapes(features):
        found = {}
        for f in features:
            kind = f.type.WhichOneof('Type')
            if kind == 'imageType':
                found[f.name] = ['RGB' if f.type.imageType.colorSpace == 20
                                 else f.type.imageType.colorSpace,
                                 f.type.imageType.height,
                                 f.type.imageType.width]
            elif kind == 'multiArrayType':
                found[f.name] = list(f.type.multiArrayType.shape)
            else:
                found[f.name] = kind
        return found
    return shapes(description.input), shapes(description.output)


def check(mlmodel, model: nn.Module, shape: Tuple[int, int],
          image: bool = False) -> None:
    """Check that the spec's names and shapes are those of ``model`` on a
    (1, 3, H, W) input.

    Args:
        mlmodel: The converted program.
        model (nn.Module): The export model it was converted from.
        shape (tuple[int, int]): The input's height and width.
        image (bool): Whether it was converted with an image input.

    Raises:
        AssertionError: They differ.
    """
    with torch.no_grad():
        expected = model(torch.zeros(1, 3, *shape))
    if isinstance(expected, torch.Tensor):
        expected = (expected, )
    inputs, outputs = spec_shapes(mlmodel)
    want_in = {'image': ['RGB', *shape]} if image else {
        'input': [1, 3, *shape]}
    want_out = {name: list(out.shape)
                for name, out in zip(output_names(model), expected)}
    if image and isinstance(model, Logits):
        want_out = {'classLabel': 'stringType',
                    'classLabel_probs': 'dictionaryType'}
    if inputs != want_in or outputs != want_out:
        raise AssertionError(f'Core ML spec has inputs {inputs} and outputs '
                             f'{outputs}; expected {want_in} and {want_out}')
