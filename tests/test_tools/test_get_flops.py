import pytest

from mvig2_mm.deployment import count
from tools.analysis_tools.get_flops import arch_models

# the reference's counts (all parameters, with the distillation head)
EXPECTED = dict(ti=(4.54, 5.70), s=(6.61, 7.77), m=(14.25, 15.47),
                b=(25.95, 27.88))


@pytest.mark.parametrize('arch', ['ti', 's', 'm', 'b'])
def test_param_counts_equal_the_reference(arch):
    models = dict(arch_models(arch, 1000))
    backbone = sum(p.numel() for p in models['backbone'].parameters())
    full = sum(p.numel()
               for p in models['classifier (with dist head)'].parameters())
    assert round(backbone / 1e6, 2) == EXPECTED[arch][0]
    assert round(full / 1e6, 2) == EXPECTED[arch][1]


def test_cli_prints_table(capsys):
    from tools.analysis_tools.get_flops import main
    assert main(['--arch', 'ti', '--shape', '64']) == 0
    out = capsys.readouterr().out
    assert '| backbone | 64x64 | 4.54 |' in out
    assert '| classifier (with dist head) | 64x64 | 5.70 |' in out


def test_macs_at_224_close_to_reference_counter():
    params, macs = count(dict(arch_models('ti', 1000))['backbone'], (224, 224))
    assert macs / 1e9 == pytest.approx(0.63, abs=0.02)
