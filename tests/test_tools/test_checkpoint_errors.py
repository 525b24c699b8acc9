"""Checkpoints that do not fit, and build or load failures inside the
Runner, stop tools/train.py, tools/test.py and tools/infer.py with one line
(no traceback, never random weights)."""
import pytest
import torch

from tool_helpers import (CONFIGS, REPO, assert_one_line_error, data_options,
                          run_tool)


@pytest.fixture(scope='module')
def det_files(published, tmp_path_factory):
    """Stand-in published files for the demo detection config: a good one,
    one without its last backbone stage, one of another variant, and a
    segmentation file."""
    root = tmp_path_factory.mktemp('det_files')
    good = published.whole_model(CONFIGS['det'], 'ti', root / 'good.pth',
                                 'mmdet')
    partial = {k: v for k, v in good.items()
               if not k.startswith('backbone.backbone.3.')}
    torch.save(dict(state_dict=partial), root / 'partial.pth')
    published.whole_model(CONFIGS['det'], 's', root / 'variant.pth', 'mmdet')
    published.whole_model(CONFIGS['seg'], 'ti', root / 'task.pth', 'mmseg')
    return root


CASES = [
    ('partial.pth', 'likely cause: its MobileViGv2 weights are incomplete'),
    ('variant.pth', "likely cause: the checkpoint looks like arch 's' "
                    "(MobileViGv2) and the model is arch='ti'"),
    ('task.pth', 'likely cause: it is a segmentation checkpoint and the '
                 'config builds a detection model'),
]


@pytest.mark.parametrize('name,cause', CASES)
def test_test_py_stops_on_a_checkpoint_that_does_not_fit(
        det_files, coco_root, tmp_path, name, cause):
    proc = run_tool('test.py', CONFIGS['det'], det_files / name,
                    '--work-dir', tmp_path, '--cfg-options',
                    *data_options('det', coco_root))
    line = assert_one_line_error(proc, cause)
    assert f'checkpoint {det_files / name} does not fit MaskRCNN: ' in line


@pytest.mark.parametrize('name,cause', CASES)
def test_infer_py_stops_on_a_checkpoint_that_does_not_fit(
        det_files, coco_root, tmp_path, name, cause):
    proc = run_tool('infer.py', CONFIGS['det'], det_files / name,
                    coco_root / 'val', '--out-dir', tmp_path)
    line = assert_one_line_error(proc, cause)
    assert f'checkpoint {det_files / name} does not fit MaskRCNN: ' in line
    assert not (tmp_path / 'vis').exists()


def test_headline_training_without_the_imagenet_checkpoint(tmp_path):
    """What a new user runs first; found before any dataset is built."""
    assert not (REPO / 'checkpoints/mobilevigv2_m_in1k.pth').exists()
    proc = run_tool('train.py', REPO / 'configs/detection/maskrcnn_mvig2_m.py',
                    '--work-dir', tmp_path)
    assert_one_line_error(
        proc, 'pretrained checkpoint not found: '
        'checkpoints/mobilevigv2_m_in1k.pth '
        '(model.backbone.init_cfg.checkpoint)')


def test_unknown_arch_is_named_before_the_missing_imagenet_checkpoint(
        tmp_path):
    """A config error comes before a missing file: the headline config
    without its ImageNet file, with an arch that does not exist."""
    proc = run_tool('train.py', REPO / 'configs/detection/maskrcnn_mvig2_m.py',
                    '--work-dir', tmp_path, '--cfg-options',
                    'model.backbone.arch=xl')
    line = assert_one_line_error(
        proc, 'cannot build the model of maskrcnn_mvig2_m.py: ')
    assert "Unavailable arch 'xl'" in line


def test_missing_teacher_checkpoint_before_training(imagenet_root, tmp_path):
    """Training with distillation needs the teacher's file: the pre-flight
    names it (evaluation never needs it)."""
    config = tmp_path / 'distilled.py'
    config.write_text(
        f"_base_ = '{CONFIGS['cls']}'\n"
        "model = dict(teacher=dict(\n"
        "    _delete_=True,\n"
        "    config='mmpretrain::resnet/resnet18_8xb32_in1k.py',\n"
        f"    checkpoint='{tmp_path / 'resnet18.pth'}'))\n")
    proc = run_tool('train.py', config, '--work-dir', tmp_path / 'work',
                    '--cfg-options', *data_options('cls', imagenet_root))
    assert_one_line_error(
        proc, f'teacher checkpoint not found: {tmp_path / "resnet18.pth"} '
        f'(model.teacher.checkpoint)')


def test_child_config_that_cannot_merge_into_its_base(tmp_path):
    """A dict over the base's ``teacher=None``: mmengine's merge error (it
    names the key and the fix) as one line."""
    config = tmp_path / 'distilled.py'
    config.write_text(f"_base_ = '{CONFIGS['cls']}'\n"
                      "model = dict(teacher=dict(config='x.py'))\n")
    proc = run_tool('train.py', config, '--work-dir', tmp_path / 'work')
    line = assert_one_line_error(
        proc, f'{config}: teacher=')
    assert 'You may set `_delete_=True`' in line


def test_unknown_arch(coco_root, tmp_path):
    proc = run_tool('train.py', CONFIGS['det'], '--work-dir', tmp_path,
                    '--cfg-options', *data_options('det', coco_root),
                    'model.backbone.arch=xl')
    line = assert_one_line_error(
        proc, "cannot build the model of maskrcnn_mvig2_ti_shapes.py: ")
    assert "Unavailable arch 'xl'. Choose one of ['b', 'm', 's', 'ti']" in line


def test_init_cfg_of_another_variant(published, coco_root, tmp_path):
    ckpt = tmp_path / 'mobilevigv2_s.pth'
    published.imagenet('s', ckpt)
    config = tmp_path / 'pretrained_s.py'
    config.write_text(
        f"_base_ = '{CONFIGS['det']}'\n"
        f"model = dict(backbone=dict(init_cfg=dict(_delete_=True, "
        f"type='Pretrained', checkpoint='{ckpt}', prefix='backbone.')))\n")
    proc = run_tool('train.py', config, '--work-dir', tmp_path / 'work',
                    '--cfg-options', *data_options('det', coco_root),
                    'train_cfg.max_iters=1')
    line = assert_one_line_error(
        proc, f"Checkpoint '{ckpt}' does not fit MobileViGv2(arch='ti'): ")
    assert "looks like arch 's'" in line


def test_truncated_checkpoint(det_files, coco_root, tmp_path):
    data = (det_files / 'good.pth').read_bytes()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(data[:len(data) // 2])
    proc = run_tool('test.py', CONFIGS['det'], truncated, '--work-dir',
                    tmp_path, '--cfg-options', *data_options('det', coco_root))
    assert_one_line_error(proc, f'cannot load checkpoint {truncated}: ')


@pytest.mark.parametrize('tool', ['train.py', 'test.py', 'infer.py'])
def test_cfg_options_without_a_value(tool, det_files, tmp_path):
    args = {'train.py': [],
            'test.py': [det_files / 'good.pth'],
            'infer.py': [det_files / 'good.pth', tmp_path, '--out-dir',
                         tmp_path]}[tool]
    proc = run_tool(tool, CONFIGS['det'], *args, '--cfg-options',
                    'train_cfg.max_iters=1', 'model.backbone.arch')
    assert_one_line_error(
        proc, "--cfg-options takes KEY=VALUE pairs, got 'model.backbone.arch'")
