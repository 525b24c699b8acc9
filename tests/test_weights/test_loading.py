"""Pretrained weights: converter, init_cfg loading, mismatch errors."""
import argparse

import pytest
import torch

from mvig2_mm.models import MobileViGv2
from mvig2_mm.weights import (CheckpointMismatchError,
                              convert_reference_state_dict,
                              is_reference_layout)


def reference_checkpoint(reference, variant, path):
    """A file like the reference ImageNet training saves."""
    weights = reference.state_dict(variant)
    ema = {k: v + 1 if v.is_floating_point() else v
           for k, v in weights.items()}
    torch.save(dict(state_dict=weights, state_dict_ema=ema, epoch=299,
                    args=argparse.Namespace(model=f'mobilevigv2_{variant}')),
               path)
    return weights, ema


def features(model, x):
    with torch.no_grad():
        return model.eval()(x)


def test_converter_is_idempotent_and_complete(reference):
    ref = reference.state_dict('ti')
    assert is_reference_layout(ref)
    once = convert_reference_state_dict(ref)
    assert not is_reference_layout(once)
    assert convert_reference_state_dict(once) == once
    assert len(once) == len(ref)
    assert all(k.startswith(('backbone.stem.', 'backbone.stages.', 'head.'))
               for k in once)
    assert once['head.fc.weight'].shape == (1000, 512)
    # DDP-wrapped reference weights convert the same
    wrapped = {f'module.{k}': v for k, v in ref.items()}
    assert convert_reference_state_dict(wrapped).keys() == once.keys()


@pytest.mark.parametrize('use_ema', [False, True])
def test_init_cfg_on_an_unconverted_reference_file(reference, tmp_path,
                                                   use_ema):
    path = tmp_path / 'mobilevigv2_ti.pth'
    weights, ema = reference_checkpoint(reference, 'ti', path)
    init_cfg = dict(type='Pretrained', checkpoint=str(path),
                    prefix='backbone.')
    if use_ema:
        init_cfg['use_ema'] = True
    model = MobileViGv2('ti', init_cfg=init_cfg)
    model.init_weights()
    source = ema if use_ema else weights
    assert torch.equal(model.stem[0].conv.weight, source['stem.stem.0.weight'])
    assert torch.equal(model.stages[3][-1].layer_scale_2,
                       source['backbone.3.4.layer_scale_2'])
    if not use_ema:
        _, x = reference.inputs()
        for out, exp in zip(features(model, x),
                            reference.expected('ti')['features']):
            torch.testing.assert_close(out, exp, atol=1e-4, rtol=1e-4)


def test_converter_tool_and_init_cfg_on_converted_file(reference, tmp_path):
    from tools.model_converters.mobilevigv2_to_mm import main
    src, dst = tmp_path / 'ref.pth', tmp_path / 'out' / 'converted.pth'
    weights, ema = reference_checkpoint(reference, 's', src)
    assert main([str(src), str(dst)]) == 0
    content = torch.load(dst, weights_only=True)
    assert not is_reference_layout(content['state_dict'])

    model = MobileViGv2('s', init_cfg=dict(type='Pretrained',
                                           checkpoint=str(dst),
                                           prefix='backbone.'))
    model.init_weights()
    _, x = reference.inputs()
    for out, exp in zip(features(model, x),
                        reference.expected('s')['features']):
        torch.testing.assert_close(out, exp, atol=1e-4, rtol=1e-4)

    assert main([str(src), str(dst), '--ema']) == 0
    content = torch.load(dst, weights_only=True)
    assert torch.equal(content['state_dict']['backbone.stem.0.conv.weight'],
                       ema['stem.stem.0.weight'])


def test_converter_tool_missing_file(tmp_path, capsys):
    from tools.model_converters.mobilevigv2_to_mm import main
    assert main([str(tmp_path / 'nope.pth'), str(tmp_path / 'x.pth')]) == 1
    assert 'Pretrained checkpoint not found' in capsys.readouterr().err


def test_reference_detection_checkpoint_layout(reference, tmp_path):
    """mmdet 2.x files of the reference: backbone. + reference names."""
    weights = {f'backbone.{k}': v
               for k, v in reference.state_dict('ti').items()
               if k.startswith(('stem.', 'backbone.'))}
    weights['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)
    path = tmp_path / 'mask_rcnn.pth'
    torch.save(dict(state_dict=weights, meta=dict()), path)
    model = MobileViGv2('ti', init_cfg=dict(type='Pretrained',
                                            checkpoint=str(path),
                                            prefix='backbone.'))
    model.init_weights()
    assert torch.equal(model.stages[1][0].conv.weight,
                       weights['backbone.backbone.1.0.conv.0.weight'])


def pretrained(arch, path, prefix='backbone.', **kwargs):
    """A backbone whose init_cfg loads ``path``."""
    return MobileViGv2(arch, init_cfg=dict(type='Pretrained',
                                           checkpoint=str(path),
                                           prefix=prefix), **kwargs)


def test_mismatched_checkpoint_names_keys_and_variant(reference, tmp_path):
    path = tmp_path / 'ti.pth'
    reference_checkpoint(reference, 'ti', path)
    model = pretrained('m', path)
    with pytest.raises(CheckpointMismatchError) as info:
        model.init_weights()
    message = str(info.value)
    assert "does not fit MobileViGv2(arch='m')" in message
    assert 'shape mismatches: stages.2.0.conv.weight: checkpoint ' \
           '[128, 64, 3, 3]' \
           ' vs model [192, 64, 3, 3]' in message
    assert "looks like arch 'ti'" in message
    assert 'missing keys: stages.0.2.' in message  # m has 3 blocks, ti 2


def test_wrong_prefix_and_missing_file(reference, tmp_path):
    path = tmp_path / 'ti.pth'
    reference_checkpoint(reference, 'ti', path)
    model = pretrained('ti', path, prefix='encoder.')
    with pytest.raises(CheckpointMismatchError, match="prefix 'encoder.'"):
        model.init_weights()
    model = pretrained('ti', tmp_path / 'no.pth', prefix=None)
    with pytest.raises(FileNotFoundError,
                       match='Pretrained checkpoint not found'):
        model.init_weights()


def test_training_checkpoint_into_deploy_model_says_how(reference, tmp_path):
    path = tmp_path / 'ti.pth'
    reference_checkpoint(reference, 'ti', path)
    model = pretrained('ti', path, deploy=True)
    with pytest.raises(CheckpointMismatchError,
                       match='reparameterize_model.py'):
        model.init_weights()


@pytest.mark.parametrize('family', ['MobileViGv2', 'MobileViG'])
def test_file_of_another_mmpretrain_model_is_named_so(family):
    """EfficientFormer, the baseline users compare with, has ``.mlp.``
    blocks; its file is another model's, not a MobileViG one."""
    from mmpretrain import get_model
    from mmpretrain.registry import MODELS

    from mvig2_mm.models import imagenet_classifier_cfg
    from mvig2_mm.weights import check_checkpoint, describe_checkpoint
    other = get_model('efficientformer-l1_3rdparty_8xb128_in1k').state_dict()
    assert describe_checkpoint(dict(state_dict=other)).family is None
    model = MODELS.build(imagenet_classifier_cfg('ti', backbone=family))
    with pytest.raises(CheckpointMismatchError,
                       match=f"likely cause: it holds no {family} weights "
                             f"under 'backbone.' \\(another model's"):
        check_checkpoint(model, other)
