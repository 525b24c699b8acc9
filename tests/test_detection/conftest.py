"""Detector smoke test shared by the detection tests: build a detector from a
config, run ``loss`` (and a backward pass) and ``predict`` on two small
random images, and check what comes back."""
import copy
import math

import pytest
import torch

NUM_CLASSES = 80  # every config here is COCO


# Caps on the number of proposals, RoIs and detections, so that a test runs
# in seconds on a CPU; the model itself is unchanged.
_CAPS = {'nms_pre': 200, 'max_per_img': 10, 'num': 32}


def _shrink_for_cpu(cfg, parent_key=None) -> None:
    """Keep every detection of an untrained model (``score_thr`` 0, so that
    ``predict`` returns boxes and masks to check) and cap the counts."""
    if isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'score_thr':
                cfg[key] = 0.
            elif key in _CAPS and isinstance(value, int) and (
                    key != 'num' or parent_key == 'sampler'):
                cfg[key] = min(value, _CAPS[key])
            else:
                _shrink_for_cpu(value, key)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            _shrink_for_cpu(value, parent_key)


def _loss_values(value):
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _loss_values(item)


def _calibrate_norms(model, packed) -> None:
    """Set the backbone's BatchNorm statistics to those of the batch, as a
    trained backbone's would be: with random weights and the initial
    statistics (mean 0, variance 1) a deep untrained backbone's activations
    grow into the thousands (MobileViG's global blocks have no layer
    scales), and the RPN then proposes no valid box to check."""
    norms = [m for m in model.backbone.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average: this batch's stats
        norm.train()
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(packed), False)
        model.backbone(data['inputs'])
    for norm in norms:
        norm.momentum = 0.1


def run_detector(model_cfg, with_mask: bool, expected_loss_keys=(),
                 image_shape=(3, 128, 160)):
    """Build ``model_cfg`` in the mmdet scope and run loss and predict.

    Runs on one CPU thread: these models are small enough, and with two
    threads on a busy 2-core machine a run now and then stalls for tens of
    seconds (one OpenMP thread waiting for the other to be scheduled).

    Returns the loss dict and the predictions.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_detector(model_cfg, with_mask, expected_loss_keys,
                             image_shape)
    finally:
        torch.set_num_threads(threads)


def _run_detector(model_cfg, with_mask, expected_loss_keys, image_shape):
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmdet.testing import demo_mm_inputs
    from mmdet.utils import register_all_modules

    register_all_modules()
    model_cfg = copy.deepcopy(model_cfg)
    _shrink_for_cpu(model_cfg.get('train_cfg'))
    _shrink_for_cpu(model_cfg.get('test_cfg'))
    model = MODELS.build(model_cfg)
    assert type(model.backbone).__name__ == model_cfg['backbone']['type']

    packed = demo_mm_inputs(batch_size=2, image_shapes=[image_shape] * 2,
                            num_items=[3, 2], num_classes=NUM_CLASSES,
                            with_mask=with_mask)
    _calibrate_norms(model, packed)

    model.train()
    data = model.data_preprocessor(copy.deepcopy(packed), True)
    losses = model.forward(**data, mode='loss')
    assert isinstance(losses, dict) and losses
    missing = set(expected_loss_keys) - set(losses)
    assert not missing, f'loss keys {sorted(losses)} lack {sorted(missing)}'
    for key, value in losses.items():
        for tensor in _loss_values(value):
            assert torch.isfinite(tensor).all(), f'{key} is not finite'
    total, _ = model.parse_losses(losses)
    assert math.isfinite(total.item())
    total.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in model.backbone.parameters()), \
        'no gradient reached the backbone'

    model.eval()
    with torch.no_grad():
        data = model.data_preprocessor(copy.deepcopy(packed), False)
        results = model.forward(**data, mode='predict')
    assert len(results) == 2
    height, width = image_shape[1:]
    for result in results:
        assert isinstance(result, DetDataSample)
        pred = result.pred_instances
        num = len(pred)
        assert num > 0
        assert pred.bboxes.shape == (num, 4)
        assert torch.isfinite(pred.bboxes).all()
        assert pred.labels.shape == (num,)
        assert ((pred.labels >= 0) & (pred.labels < NUM_CLASSES)).all()
        assert pred.scores.shape == (num,)
        assert ((pred.scores >= 0) & (pred.scores <= 1)).all()
        if with_mask:
            assert pred.masks.shape == (num, height, width)
            assert pred.masks.dtype == torch.bool
        else:
            assert 'masks' not in pred
    return losses, results


@pytest.fixture
def det_smoke():
    """:func:`run_detector`, for the tests of this folder."""
    return run_detector
