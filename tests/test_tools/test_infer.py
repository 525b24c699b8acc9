"""tools/infer.py: one tool, the three libraries' inferencers, on randomly
initialised models of the demo configs and two synthetic images per task."""
import json
import shutil

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from tool_helpers import CONFIGS, assert_one_line_error, data_options, run_tool
from tools.infer import main as infer

DET_CLASSES = ('circle', 'rectangle', 'triangle')


def save_checkpoint(task: str, path, dataset_meta=None) -> str:
    """The demo config's model, randomly initialised, as a checkpoint."""
    from mmengine.registry import MODELS
    cfg = Config.fromfile(CONFIGS[task])
    with MODELS.switch_scope_and_registry(cfg.default_scope) as registry:
        model = registry.build(cfg.model)
    checkpoint = dict(state_dict=model.state_dict(), meta={})
    if dataset_meta is not None:  # as mmengine's Runner saves it
        checkpoint['meta']['dataset_meta'] = dataset_meta
    torch.save(checkpoint, path)
    return str(path)


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('checkpoints')
    return dict(
        det=save_checkpoint('det', folder / 'det.pth', dict(
            classes=DET_CLASSES,
            palette=[(220, 20, 60), (0, 160, 0), (30, 60, 230)])),
        seg=save_checkpoint('seg', folder / 'seg.pth', dict(
            classes=('background', 'circle', 'rectangle', 'triangle'),
            palette=[(120, 120, 120), (220, 20, 60), (0, 160, 0),
                     (30, 60, 230)])),
        # no dataset_meta: the classes come from the config's dataset
        cls=save_checkpoint('cls', folder / 'cls.pth'))


def two_images(src_dir, dst_dir):
    dst_dir.mkdir()
    for path in sorted(p for p in src_dir.rglob('*') if p.is_file())[:2]:
        shutil.copy(path, dst_dir / path.name)
    return sorted(dst_dir.iterdir())


def test_detection(checkpoints, coco_root, tmp_path):
    images = two_images(coco_root / 'val', tmp_path / 'images')
    out = tmp_path / 'out'
    infer([str(CONFIGS['det']), checkpoints['det'], str(tmp_path / 'images'),
           '--out-dir', str(out), '--device', 'cpu', '--score-thr', '0.1'])
    for image in images:
        drawn = out / 'vis' / image.name
        assert drawn.is_file()
        assert Image.open(drawn).size == Image.open(image).size
        preds = json.loads((out / 'preds' / f'{image.stem}.json').read_text())
        assert set(preds) >= {'labels', 'scores', 'bboxes', 'masks'}
        assert len(preds['labels']) == len(preds['bboxes']) > 0
        assert all(0 <= label < len(DET_CLASSES) for label in preds['labels'])


def test_segmentation(checkpoints, ade_root, tmp_path):
    images = two_images(ade_root / 'images' / 'validation',
                        tmp_path / 'images')
    out = tmp_path / 'out'
    infer([str(CONFIGS['seg']), checkpoints['seg'], str(tmp_path / 'images'),
           '--out-dir', str(out), '--device', 'cpu'])
    for image in images:
        size = Image.open(image).size
        assert Image.open(out / 'vis' / image.name).size == size
        label = np.asarray(Image.open(out / 'pred' / f'{image.stem}.png'))
        assert label.shape == size[::-1]
        assert label.max() < 4


def test_classification_one_image(checkpoints, imagenet_root, tmp_path):
    """A single image; class names from the config (the checkpoint has
    none)."""
    image = sorted((imagenet_root / 'val').rglob('*.JPEG'))[0]
    out = tmp_path / 'out'
    infer([str(CONFIGS['cls']), checkpoints['cls'], str(image),
           '--out-dir', str(out), '--device', 'cpu',
           '--cfg-options', *data_options('cls', imagenet_root)])
    assert (out / 'vis' / f'{image.stem}.png').is_file()
    pred = json.loads((out / 'preds' / f'{image.stem}.json').read_text())
    classes = (imagenet_root / 'meta' / 'classes.txt').read_text().split('\n')
    assert 0 <= pred['pred_label'] < 8
    assert pred['pred_class'] == classes[pred['pred_label']]
    assert len(pred['pred_scores']) == 8
    assert sum(pred['pred_scores']) == pytest.approx(1, abs=1e-4)


def test_classification_folder(checkpoints, imagenet_root, tmp_path):
    images = two_images(imagenet_root / 'val', tmp_path / 'images')
    out = tmp_path / 'out'
    infer([str(CONFIGS['cls']), checkpoints['cls'], str(tmp_path / 'images'),
           '--out-dir', str(out), '--batch-size', '2'])
    for image in images:
        assert (out / 'vis' / f'{image.stem}.png').is_file()
        assert (out / 'preds' / f'{image.stem}.json').is_file()


# ------------------------------------------------------------ bad input
def test_missing_config_is_one_line(tmp_path):
    proc = run_tool('infer.py', tmp_path / 'nope.py', tmp_path / 'x.pth',
                    tmp_path, '--out-dir', tmp_path / 'out')
    assert_one_line_error(proc, f'config file not found: {tmp_path}/nope.py')


BAD_INPUT_ERRORS = {
    'checkpoint': 'checkpoint file not found: {tmp}/missing.pth',
    'input': 'input not found: {tmp}/missing.png',
    'empty_dir': 'no images in {tmp}/empty',
    'corrupt_image': 'cannot read image {tmp}/images/bad.png',
    'corrupt_checkpoint': 'cannot load checkpoint {tmp}/bad.pth',
    'deploy_checkpoint': 'deploy.pth holds the deploy form of the MobileViGv2 '
                         'backbone',
}


def one_line_error(capsys) -> str:
    """What the last call of main() said on stderr: one line, no
    traceback."""
    err = capsys.readouterr().err
    assert 'Traceback' not in err, err[-3000:]
    message = err.strip().splitlines()[-1]
    assert message.startswith('tools/infer.py: error: ')
    return message


@pytest.mark.parametrize('broken', list(BAD_INPUT_ERRORS))
def test_bad_input(broken, checkpoints, coco_root, tmp_path, capsys):
    two_images(coco_root / 'val', tmp_path / 'images')
    checkpoint, inputs = checkpoints['det'], tmp_path / 'images'
    if broken == 'checkpoint':
        checkpoint = tmp_path / 'missing.pth'
    elif broken == 'input':
        inputs = tmp_path / 'missing.png'
    elif broken == 'empty_dir':
        inputs = tmp_path / 'empty'
        inputs.mkdir()
    elif broken == 'corrupt_image':
        (inputs / 'bad.png').write_bytes(b'not an image')
    elif broken == 'corrupt_checkpoint':
        checkpoint = tmp_path / 'bad.pth'
        checkpoint.write_bytes(b'not a checkpoint')
    else:  # a deploy-form checkpoint for the training-form config
        from mvig2_mm.models.utils import switch_to_deploy
        content = torch.load(checkpoint)
        cfg = Config.fromfile(CONFIGS['det'])
        from mmengine.registry import MODELS
        with MODELS.switch_scope_and_registry('mmdet') as registry:
            model = registry.build(cfg.model)
        model.load_state_dict(content['state_dict'])
        content['state_dict'] = switch_to_deploy(model.eval()).state_dict()
        checkpoint = tmp_path / 'deploy.pth'
        torch.save(content, checkpoint)
    assert infer([str(CONFIGS['det']), str(checkpoint), str(inputs),
                  '--out-dir', str(tmp_path / 'out')]) == 1
    message = one_line_error(capsys)
    assert BAD_INPUT_ERRORS[broken].format(tmp=tmp_path) in message
    assert not (tmp_path / 'out').exists()  # nothing written


def test_config_of_another_library(tmp_path, capsys):
    config = tmp_path / 'other.py'
    config.write_text("default_scope = 'mmocr'\n")
    checkpoint = tmp_path / 'x.pth'
    checkpoint.touch()
    assert infer([str(config), str(checkpoint), str(tmp_path), '--out-dir',
                  str(tmp_path / 'out')]) == 1
    assert "default_scope is 'mmocr'" in one_line_error(capsys)
