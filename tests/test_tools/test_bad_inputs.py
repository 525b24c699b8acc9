"""Broken datasets stop tools/train.py and tools/test.py with one line that
names the file (no traceback): before the run for what the pre-flight checks
see (mvig2_mm/cli/data_checks.py), at load time for an undecodable image.

The demo configs are pointed at broken copies of small synthetic datasets
with ``--cfg-options``."""
import copy
import json
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mvig2_mm.cli.data_checks import (DataCheckError, check_data,
                                      describe_load_error)
from tool_helpers import (CONFIGS, assert_one_line_error, data_options,
                          run_tool, save_det_checkpoint)


@pytest.fixture
def coco(coco_root, tmp_path):
    """A copy of the synthetic COCO set, to break."""
    return shutil.copytree(coco_root, tmp_path / 'coco')


@pytest.fixture
def ade(ade_root, tmp_path):
    """A copy of the synthetic ADE20K-layout set, to break."""
    return shutil.copytree(ade_root, tmp_path / 'ade')


def run_train(task, root, *extra):
    return run_tool('train.py', CONFIGS[task], '--work-dir',
                    root.parent / 'work_dir', '--cfg-options',
                    *data_options(task, root), 'train_cfg.max_iters=1',
                    *extra)


def run_test(task, root, checkpoint, *extra):
    return run_tool('test.py', CONFIGS[task], checkpoint, '--work-dir',
                    root.parent / 'work_dir', '--cfg-options',
                    *data_options(task, root), *extra)


# ------------------------------------------------------------ detection
def test_det_missing_data_root(tmp_path):
    proc = run_train('det', tmp_path / 'nowhere')
    assert_one_line_error(
        proc, f'train_dataloader: data_root not found: {tmp_path}/nowhere/')


def test_det_missing_annotation_file(coco):
    (coco / 'annotations' / 'instances_val.json').unlink()
    checkpoint = coco / 'model.pth'
    checkpoint.touch()
    proc = run_test('det', coco, checkpoint)
    assert_one_line_error(
        proc, f'test_dataloader: annotation file not found: '
        f'{coco}/annotations/instances_val.json')


def test_det_annotation_file_not_json(coco):
    (coco / 'annotations' / 'instances_train.json').write_text('{"images": [')
    proc = run_train('det', coco)
    line = assert_one_line_error(
        proc, 'train_dataloader: not a COCO annotation file (invalid JSON')
    assert line.endswith(f'{coco}/annotations/instances_train.json')


def test_det_annotation_file_not_coco(coco):
    path = coco / 'annotations' / 'instances_train.json'
    content = json.loads(path.read_text())
    del content['categories']
    path.write_text(json.dumps(content))
    proc = run_train('det', coco)
    assert_one_line_error(
        proc, f'train_dataloader: not a COCO annotation file (no categories '
        f'list): {path}')


def test_det_corrupt_image_in_training(coco):
    """The pre-flight check only sees that the file exists and is not
    empty; loading it fails in mmcv's LoadImageFromFile, whose error names
    the file, and train.py says which file."""
    bad = coco / 'train' / '000003.png'
    bad.write_bytes(b'\x89PNG but not really')
    proc = run_train('det', coco, 'train_dataloader.batch_size=8')
    assert_one_line_error(proc, f'cannot read image {bad}: not a readable '
                          f'image')


def test_det_corrupt_image_in_testing(coco):
    """An empty file: OpenCV's error would not name it, the pre-flight
    check does (for the images it samples)."""
    from mmengine.registry import MODELS
    cfg = Config.fromfile(CONFIGS['det'])
    with MODELS.switch_scope_and_registry('mmdet') as registry:
        model = registry.build(cfg.model)
    checkpoint = coco / 'model.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    bad = coco / 'val' / '000001.png'
    bad.write_bytes(b'')
    proc = run_test('det', coco, checkpoint)
    assert_one_line_error(proc, f'cannot read image {bad}: empty file')


# ------------------------------------------------------------ segmentation
def test_seg_missing_annotation_folder(ade):
    shutil.rmtree(ade / 'annotations' / 'training')
    proc = run_train('seg', ade)
    assert_one_line_error(
        proc, f'train_dataloader: annotation folder not found: '
        f'{ade}/annotations/training')


def test_seg_label_map_of_another_size(ade):
    label = sorted((ade / 'annotations' / 'training').iterdir())[2]
    Image.fromarray(np.ones((64, 80), np.uint8)).save(label)
    proc = run_train('seg', ade)
    assert_one_line_error(
        proc, f'train_dataloader: label map {label} is 80x64 but its image '
        f'{ade}/images/training/{label.stem}.jpg is 96x96')


def test_seg_class_ids_out_of_range(ade):
    """4 classes with reduce_zero_label: ids 1..4 (0 and 255 ignored)."""
    label = sorted((ade / 'annotations' / 'validation').iterdir())[1]
    values = np.asarray(Image.open(label)).copy()
    values[:10, :10] = 7
    values[-5:, -5:] = 255  # ignored: fine
    Image.fromarray(values).save(label)
    checkpoint = ade / 'model.pth'
    checkpoint.touch()
    proc = run_test('seg', ade, checkpoint)
    line = assert_one_line_error(
        proc, f'test_dataloader: label map {label} holds class ids out of '
        f'range: 7 (the model has 4 classes')
    assert 'ignore index 255' in line


# ------------------------------------------------------------ in process
@pytest.fixture(scope='module')
def configs():
    return {task: Config.fromfile(path) for task, path in CONFIGS.items()}


def config_for(configs, task, root):
    cfg = copy.deepcopy(configs[task])
    cfg.merge_from_dict(dict(option.split('=', 1)
                             for option in data_options(task, root)))
    return cfg


def check(cfg, loader='train_dataloader', **kwargs):
    with pytest.raises(DataCheckError) as exc:
        check_data(cfg, [loader], **kwargs)
    assert '\n' not in str(exc.value)
    return str(exc.value)


def test_good_datasets_pass(configs, coco_root, ade_root, imagenet_root):
    for task, root in (('det', coco_root), ('seg', ade_root),
                       ('cls', imagenet_root)):
        check_data(config_for(configs, task, root), [
            'train_dataloader', 'val_dataloader', 'test_dataloader'],
            ['val_evaluator', 'test_evaluator'])


def test_missing_image_folders(configs, coco, ade):
    shutil.rmtree(coco / 'train')
    assert check(config_for(configs, 'det', coco)) == \
        f'train_dataloader: image folder not found: {coco}/train/'
    shutil.rmtree(ade / 'images' / 'validation')
    assert check(config_for(configs, 'seg', ade), 'val_dataloader') == \
        f'val_dataloader: image folder not found: {ade}/images/validation'


def test_missing_listed_image(configs, coco):
    (coco / 'train' / '000002.png').unlink()
    assert check(config_for(configs, 'det', coco)) == (
        f'train_dataloader: image not found: {coco}/train/000002.png '
        f'(listed in {coco}/annotations/instances_train.json)')


def test_coco_file_without_images(configs, coco):
    path = coco / 'annotations' / 'instances_train.json'
    path.write_text(json.dumps(dict(images=[], annotations=[],
                                    categories=[])))
    assert check(config_for(configs, 'det', coco)) == \
        f'train_dataloader: annotation file lists no images: {path}'


def test_missing_evaluator_annotation_file(configs, coco):
    cfg = config_for(configs, 'det', coco)
    cfg.val_evaluator.ann_file = str(coco / 'nope.json')
    with pytest.raises(DataCheckError, match='val_evaluator: annotation '
                       f'file not found: {coco}/nope.json'):
        check_data(cfg, [], ['val_evaluator'])


def test_large_coco_file_is_probed_not_parsed(configs, coco, monkeypatch):
    from mvig2_mm.cli import data_checks
    monkeypatch.setattr(data_checks, 'MAX_JSON_BYTES', 10)
    cfg = config_for(configs, 'det', coco)
    check_data(cfg, ['train_dataloader'])  # all three keys are there
    path = coco / 'annotations' / 'instances_train.json'
    path.write_text(path.read_text().replace('"categories"', '"classes"'))
    assert check(cfg).endswith(f'(no categories): {path}')
    path.write_text('[]' + ' ' * 100)
    assert 'not a JSON object' in check(cfg)


def test_missing_label_map(configs, ade):
    label = sorted((ade / 'annotations' / 'training').iterdir())[0]
    label.unlink()
    assert check(config_for(configs, 'seg', ade)) == (
        f'train_dataloader: label map not found: {label} (for image '
        f'{ade}/images/training/{label.stem}.jpg)')


def test_label_maps_are_sampled(configs, ade):
    """Only ``sample`` label maps, spread over the dataset, are read."""
    labels = sorted((ade / 'annotations' / 'training').iterdir())
    Image.fromarray(np.full((96, 96), 9, np.uint8)).save(labels[3])
    cfg = config_for(configs, 'seg', ade)
    check_data(cfg, ['train_dataloader'], sample=2)  # the first and last
    assert str(labels[3]) in check(cfg, sample=8)


def test_label_ids_without_reduce_zero_label(configs, ade):
    cfg = config_for(configs, 'seg', ade)
    cfg.train_dataloader.dataset.reduce_zero_label = False
    # the synthetic maps hold 1..4: 4 is out of range for classes 0..3
    assert 'holds class ids out of range: 4 (the model has 4 classes: ids ' \
        '0..3, ignore index 255)' in check(cfg)


def test_missing_classification_data(configs, imagenet_root, tmp_path):
    root = shutil.copytree(imagenet_root, tmp_path / 'imagenet')
    cfg = config_for(configs, 'cls', root)
    (root / 'meta' / 'val.txt').unlink()
    shutil.rmtree(root / 'val')
    assert check(cfg, 'val_dataloader') == \
        f'val_dataloader: image folder not found: {root}/val'
    (root / 'meta' / 'classes.txt').unlink()
    assert check(cfg) == \
        f'train_dataloader: classes file not found: {root}/meta/classes.txt'


def test_wrapped_datasets_are_checked(configs, coco, tmp_path):
    cfg = config_for(configs, 'det', coco)
    inner = cfg.train_dataloader.dataset
    inner.data_root = str(tmp_path / 'nowhere')
    cfg.train_dataloader.dataset = dict(
        type='ConcatDataset',
        datasets=[dict(type='RepeatDataset', times=2, dataset=inner)])
    assert 'data_root not found' in check(cfg)


def test_remote_paths_are_not_checked(configs):
    cfg = copy.deepcopy(configs['det'])
    cfg.train_dataloader.dataset.data_root = 's3://bucket/coco/'
    check_data(cfg, ['train_dataloader'])


def test_load_errors_from_a_worker_are_recognised():
    text = ('Caught AssertionError in DataLoader worker process 0.\n'
            'Original Traceback (most recent call last):\n'
            '  File "/x/mmcv/transforms/loading.py", line 110, in transform\n'
            "    assert img is not None, f'failed to load image: {filename}'\n"
            'AssertionError: failed to load image: /data/a b.png\n')
    assert describe_load_error(AssertionError(text)) == \
        'cannot read image /data/a b.png: not a readable image'
    text = text.replace('AssertionError: failed to load image: /data/a b.png',
                        "FileNotFoundError: [Errno 2] No such file or "
                        "directory: '/data/c.png'")
    assert describe_load_error(FileNotFoundError(text)) == \
        'cannot read image /data/c.png: no such file'


def test_load_errors_in_the_main_process_are_recognised(tmp_path):
    """mmcv's message names the file; it is recognised when that file is
    there (and could not be decoded)."""
    bad = tmp_path / 'a b.png'
    bad.write_bytes(b'\x89PNG but not really')
    assert describe_load_error(AssertionError(
        f'failed to load image: {bad}')) == \
        f'cannot read image {bad}: not a readable image'


def test_other_errors_are_not_described(tmp_path):
    assert describe_load_error(AssertionError('failed to load image: x')) \
        is None
    assert describe_load_error(FileNotFoundError(2, 'No such file', 'a.pth')) \
        is None
    # a decoder error that does not name its file keeps its traceback
    assert describe_load_error(RuntimeError(
        "OpenCV(5.0.0) loadsave.cpp:1291: error: (-215:Assertion failed) "
        "!buf.empty() in function 'imdecode_'")) is None
    image = tmp_path / 'x.png'
    image.write_bytes(b'')
    assert describe_load_error(ValueError(f'failed to load image: {image}')) \
        is None  # not mmcv's AssertionError


def test_empty_listed_image(configs, coco):
    (coco / 'train' / '000002.png').write_bytes(b'')
    assert check(config_for(configs, 'det', coco)) == (
        f'train_dataloader: cannot read image {coco}/train/000002.png: '
        f'empty file (listed in {coco}/annotations/instances_train.json)')


# ------------------------------------------------- training vs deploy form
def test_deploy_checkpoint_needs_a_deploy_backbone(coco):
    checkpoint = save_det_checkpoint(coco / 'deploy.pth', deploy_form=True)
    proc = run_test('det', coco, checkpoint)
    assert_one_line_error(proc, '--cfg-options model.backbone.deploy=True')


def test_training_checkpoint_in_a_deploy_backbone(coco):
    checkpoint = save_det_checkpoint(coco / 'train.pth', deploy_form=False)
    proc = run_test('det', coco, checkpoint, 'model.backbone.deploy=True')
    assert_one_line_error(proc, 'holds the training form')


def test_backbone_form_check_stays_out_of_the_way(tmp_path):
    from mvig2_mm.cli.checkpoints import backbone_form_mismatch
    cfg = Config.fromfile(CONFIGS['det'])
    train = save_det_checkpoint(tmp_path / 'train.pth', deploy_form=False)
    deploy = save_det_checkpoint(tmp_path / 'deploy.pth', deploy_form=True)
    assert backbone_form_mismatch(cfg.model, str(train)) is None
    cfg.model.backbone.deploy = True
    assert backbone_form_mismatch(cfg.model, str(deploy)) is None
    # cannot tell: a URL, another backbone, a file that is no checkpoint
    assert backbone_form_mismatch(cfg.model, 'https://x/y.pth') is None
    (tmp_path / 'junk.pth').write_bytes(b'junk')
    assert backbone_form_mismatch(cfg.model, str(tmp_path / 'junk.pth')) \
        is None
    cfg.model.backbone = dict(type='ResNet', depth=50)
    assert backbone_form_mismatch(cfg.model, str(deploy)) is None
    # keys of neither form (another layout): no verdict
    torch.save(dict(state_dict={'backbone.conv.weight': torch.zeros(1)}),
               tmp_path / 'other.pth')
    cfg.model.backbone = dict(type='MobileViGv2', arch='ti')
    assert backbone_form_mismatch(cfg.model, str(tmp_path / 'other.pth')) \
        is None
