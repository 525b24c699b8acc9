"""Tune mode ("efficient_conv_bn_eval") for the backbones of both families:
mmengine's config key (torch.fx) and the backbone argument (mmcv's
ConvModule) give the same losses and gradients, and every conv + frozen BN
pair really runs the efficient path."""
import copy
from pathlib import Path

import mmcv.cnn.bricks.conv_module as mmcv_conv_module
import mmengine.model.efficient_conv_bn_eval as mmengine_ecbe
import pytest
import torch
from mmengine.config import Config
from mmengine.model.efficient_conv_bn_eval import \
    turn_on_efficient_conv_bn_eval

from mvig2_mm.models import MobileViG, MobileViGv2

REPO = Path(__file__).resolve().parents[2]


class Calls:
    """Counts the calls of ``module.name`` while the context is open."""

    def __init__(self, module, name: str, monkeypatch) -> None:
        self.count = 0
        original = getattr(module, name)

        def counted(*args, **kwargs):
            self.count += 1
            return original(*args, **kwargs)
        monkeypatch.setattr(module, name, counted)


def conv_bn_pairs(model) -> int:
    return sum(1 for m in model.modules()
               if getattr(m, 'with_norm', False) and hasattr(m, 'conv'))


def loss_and_grads(model, x):
    model.zero_grad()
    outs = model(x)
    loss = sum(o.square().mean() for o in outs)
    loss.backward()
    return loss.detach(), {n: p.grad.clone()
                           for n, p in model.named_parameters()
                           if p.grad is not None}


def assert_same(a, b, tolerance=1e-5):
    """Same loss (relative ``tolerance``) and gradients: each parameter's
    to ``tolerance`` of its largest gradient."""
    torch.testing.assert_close(a[0], b[0], rtol=tolerance, atol=0)
    assert a[1].keys() == b[1].keys()
    for name, grad in a[1].items():
        scale = grad.abs().max().item() + 1e-12
        error = (b[1][name] - grad).abs().max().item()
        assert error <= tolerance * scale, (name, error / scale)


def detector(config: str, **backbone):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(str(REPO / config)).model
    cfg.backbone.init_cfg = None
    cfg.backbone.update(backbone)
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def test_config_key_on_a_detector_same_loss_and_gradients(monkeypatch):
    """What the Runner does for ``efficient_conv_bn_eval = ['backbone']``:
    one training step of the detector, frozen BN (norm_eval=True) and no
    drop path (the key traces the backbone)."""
    from mmdet.testing import demo_mm_inputs
    plain = detector('configs/detection/maskrcnn_mvig2_ti.py', norm_eval=True,
                     drop_path_rate=0.)
    tuned = copy.deepcopy(plain)
    turn_on_efficient_conv_bn_eval(tuned, ['backbone'])
    packed = demo_mm_inputs(batch_size=2, image_shapes=[(3, 96, 128)] * 2,
                            num_items=[3, 2], num_classes=80, with_mask=True)

    def step(model):
        model.train()
        model.zero_grad()
        torch.manual_seed(1)  # the same samples of proposals
        data = model.data_preprocessor(copy.deepcopy(packed), True)
        loss, _ = model.parse_losses(model(**data, mode='loss'))
        loss.backward()
        return loss.detach(), {n: p.grad.clone()
                               for n, p in model.backbone.named_parameters()
                               if p.grad is not None}

    expected = step(plain)
    calls = Calls(mmengine_ecbe, 'efficient_conv_bn_eval_forward',
                  monkeypatch)
    got = step(tuned)
    assert calls.count == conv_bn_pairs(tuned.backbone) > 0
    # float32 rounds conv(x, W * s) + b' and BN(conv(x, W)) differently;
    # through a whole Mask R-CNN step of an untrained model (activations in
    # the hundreds) that leaves ~1e-4 of the loss and of the largest
    # gradient. In float64 the two agree to 1e-13 (the tests below).
    torch.testing.assert_close(got[0], expected[0], rtol=5e-4, atol=0)
    largest = max(g.abs().max().item() for g in expected[1].values())
    assert max((got[1][n] - g).abs().max().item()
               for n, g in expected[1].items()) <= 5e-4 * largest


@pytest.mark.parametrize('cls', [MobileViGv2, MobileViG])
def test_config_key_is_exact_in_float64(cls, monkeypatch):
    """A backbone step in float64: Tune mode changes nothing but rounding,
    for both families, every conv + BN pair fused."""
    torch.manual_seed(0)
    plain = cls('ti', norm_eval=True, layer_scale_init_value=0.5)
    plain.init_weights()
    plain.double()
    holder = torch.nn.Module()
    holder.backbone = copy.deepcopy(plain)
    turn_on_efficient_conv_bn_eval(holder, ['backbone'])
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    expected = loss_and_grads(plain.train(), x)
    calls = Calls(mmengine_ecbe, 'efficient_conv_bn_eval_forward',
                  monkeypatch)
    got = loss_and_grads(holder.backbone.train(), x)
    assert calls.count == conv_bn_pairs(plain) > 0
    assert_same(expected, got, tolerance=1e-10)


@pytest.mark.parametrize('cls', [MobileViGv2, MobileViG])
def test_backbone_argument_same_loss_and_gradients(cls, monkeypatch):
    """In float64, where rounding cannot hide a difference."""
    torch.manual_seed(0)
    plain = cls('ti', norm_eval=True, layer_scale_init_value=0.5)
    plain.init_weights()
    tuned = cls('ti', norm_eval=True, layer_scale_init_value=0.5,
                efficient_conv_bn_eval=True)
    tuned.load_state_dict(plain.state_dict())
    plain.double(), tuned.double()
    x = torch.randn(2, 3, 64, 96, dtype=torch.float64)
    expected = loss_and_grads(plain.train(), x)
    calls = Calls(mmcv_conv_module, 'efficient_conv_bn_eval_forward',
                  monkeypatch)
    tuned.train()  # norm_eval: every BN frozen
    for module in tuned.modules():
        if getattr(module, 'efficient_conv_bn_eval_forward', None):
            module.efficient_conv_bn_eval_forward = \
                mmcv_conv_module.efficient_conv_bn_eval_forward
    got = loss_and_grads(tuned, x)
    assert calls.count == conv_bn_pairs(tuned) > 0
    assert_same(expected, got, tolerance=1e-10)


def test_off_while_batchnorm_trains(monkeypatch):
    """BN in training mode: the pairs run as conv then BN (exact)."""
    torch.manual_seed(0)
    plain = MobileViGv2('ti', layer_scale_init_value=0.5)
    plain.init_weights()
    holder = torch.nn.Module()
    holder.backbone = copy.deepcopy(plain)
    turn_on_efficient_conv_bn_eval(holder, ['backbone'])
    x = torch.randn(2, 3, 64, 96)
    expected = loss_and_grads(plain.train(), x)
    calls = Calls(mmengine_ecbe, 'efficient_conv_bn_eval_forward',
                  monkeypatch)
    got = loss_and_grads(holder.backbone.train(), x)
    assert calls.count == 0
    assert_same(expected, got)


def test_config_key_with_gradient_checkpointing_says_what_to_do():
    holder = torch.nn.Module()
    holder.backbone = MobileViGv2('ti', with_cp=True)
    with pytest.raises(ValueError, match='set with_cp=False and '
                       'drop_path_rate=0, or use the backbone argument '
                       'efficient_conv_bn_eval=True'):
        turn_on_efficient_conv_bn_eval(holder, ['backbone'])
