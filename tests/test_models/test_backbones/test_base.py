"""What both families get from ``MobileViGBase`` (base.py): the stage
outputs' shapes at any input size, the channels of every variant, the deploy
form (equal to the training form, and loadable into a model built with
``deploy=True``), and activation checkpointing (``with_cp``) with the same
outputs and gradients.
What differs per family (parity, the graph ops, deploy details) is tested in
test_mobilevigv2.py and test_mobilevig.py."""
import pytest
import torch
import torch.nn as nn

from mvig2_mm.deployment.runtimes import compile_frozen
from mvig2_mm.models import GreedyViG, MobileViG, MobileViGv2
from mvig2_mm.models.backbones.base import GraphConv

#: The stage channels of each variant, as the papers give them.
CHANNELS = {
    MobileViGv2: dict(ti=[32, 64, 128, 256], s=[32, 64, 128, 256],
                      m=[32, 64, 192, 384], b=[64, 128, 256, 512]),
    MobileViG: dict(ti=[42, 84, 168, 256], s=[42, 84, 176, 256],
                    m=[42, 84, 224, 400], b=[42, 84, 240, 464]),
    GreedyViG: dict(s=[48, 96, 192, 384], m=[56, 112, 224, 448],
                    b=[64, 128, 256, 512]),
}
FAMILIES = pytest.mark.parametrize('family', list(CHANNELS),
                                   ids=lambda cls: cls.__name__)


def smallest(family) -> str:
    """The family's smallest variant."""
    return next(iter(CHANNELS[family]))


@FAMILIES
@pytest.mark.parametrize('batch', [1, 2])
@pytest.mark.parametrize('hw', [(224, 224), (224, 320), (97, 131), (40, 72),
                                (32, 32)])
def test_output_shapes(family, hw, batch):
    model = family(smallest(family)).eval()
    with torch.no_grad():
        outs = model(torch.randn(batch, 3, *hw))
    h, w = hw
    channels_of = CHANNELS[family][smallest(family)]
    for out, channels, halvings in zip(outs, channels_of, [2, 3, 4, 5]):
        exp_h, exp_w = h, w
        for _ in range(halvings):
            exp_h, exp_w = (exp_h + 1) // 2, (exp_w + 1) // 2
        assert tuple(out.shape) == (batch, channels, exp_h, exp_w)
        assert torch.isfinite(out).all()


@FAMILIES
@pytest.mark.parametrize('arch', ['s', 'm', 'b'])
def test_variant_channels(family, arch):
    model = family(arch).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 64))
    assert [o.shape[1] for o in outs] == CHANNELS[family][arch]


@FAMILIES
def test_with_cp_same_outputs_and_gradients(family):
    torch.manual_seed(1)
    plain = family(smallest(family), layer_scale_init_value=0.3)
    plain.init_weights()
    ckpt = family(smallest(family), layer_scale_init_value=0.3, with_cp=True)
    ckpt.load_state_dict(plain.state_dict())
    plain.train(), ckpt.train()
    x = torch.randn(2, 3, 64, 64)
    out_plain, out_ckpt = plain(x), ckpt(x)
    for a, b in zip(out_plain, out_ckpt):
        torch.testing.assert_close(a, b)
    sum(o.sum() for o in out_plain).backward()
    sum(o.sum() for o in out_ckpt).backward()
    grads = dict(ckpt.named_parameters())
    for name, param in plain.named_parameters():
        assert param.grad is not None, name
        torch.testing.assert_close(param.grad, grads[name].grad,
                                   msg=f'gradient of {name} differs')


@FAMILIES
def test_deploy_equals_training_form_and_round_trip(family):
    model = family(smallest(family), layer_scale_init_value=0.5)
    model.init_weights()
    model.train()
    model(torch.randn(4, 3, 64, 64))  # non-trivial BN statistics
    model.eval()
    x = torch.randn(2, 3, 97, 131)
    with torch.no_grad():
        before = model(x)
        model.switch_to_deploy()
        after = model(x)
    for a, b in zip(before, after):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5 * a.abs().max())
    fresh = family(smallest(family), deploy=True).eval()
    fresh.load_state_dict(model.state_dict(), strict=True)
    with torch.no_grad():
        for a, b in zip(after, fresh(x)):
            assert torch.equal(a, b)


@FAMILIES
def test_graph_conv_compiles_into_one_graph_for_every_size(family):
    """``torch.compile`` (``tools/test.py --compile``, the benchmark) takes
    each family's graph convolution whole: one inductor graph
    (``fullgraph=True`` fails on a graph break) with the weights frozen as
    the benchmark compiles, equal to eager at two sizes (the second one
    recompiled with symbolic sizes), one of them smaller than the graph's
    step."""
    torch.manual_seed(0)
    model = family(smallest(family)).eval()
    graph_conv = next(m for m in model.modules() if isinstance(m, GraphConv))
    compiled = compile_frozen(graph_conv, fullgraph=True)  # as the benchmark
    channels = next(graph_conv.parameters()).shape[1] // 2  # of [x, x_j]
    with torch.inference_mode():
        for hw in [(14, 14), (5, 9)]:
            x = torch.randn(2, channels, *hw)
            torch.testing.assert_close(compiled(x), graph_conv(x))


class Aggregation(nn.Module):
    """A graph convolution's aggregation ``x -> x_j`` alone."""

    def __init__(self, graph_conv: GraphConv) -> None:
        super().__init__()
        self.graph_conv = graph_conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.graph_conv.aggregate(x)


@FAMILIES
@pytest.mark.parametrize('hw,hop', [((28, 28), 8), ((14, 14), 4),
                                    ((7, 7), 2), ((5, 9), 8), ((9, 3), 2),
                                    ((1, 7), 2)])
def test_fixed_size_export_form_equals_the_readable_one(family, hw, hop):
    """A ``torch.export`` at a fixed size (ExecuTorch, OpenVINO) takes each
    family's graph aggregation as slices and concatenations, without the
    gathers and integer index arithmetic that XNNPACK leaves out, and it
    equals the eager definition at the stage sizes of a 224 px input (28,
    14 and 7 with hops 8, 4 and 2: every axis shifted) and where the hop
    is as long as an axis or longer."""
    torch.manual_seed(0)
    model = family(smallest(family)).eval()
    graph_conv = next(m for m in model.modules() if isinstance(m, GraphConv))
    graph_conv.hop = hop
    channels = next(graph_conv.parameters()).shape[1] // 2  # of [x, x_j]
    x = torch.randn(2, channels, *hw)
    with torch.no_grad():
        program = torch.export.export(Aggregation(graph_conv), (x, ))
        ops = {str(node.target) for node in program.graph.nodes
               if node.op == 'call_function'}
        assert not [op for op in ops if any(
            name in op for name in ('index', 'gather', 'remainder',
                                    'arange'))], ops
        torch.testing.assert_close(program.module()(x),
                                   graph_conv.aggregate(x), atol=0, rtol=0)
