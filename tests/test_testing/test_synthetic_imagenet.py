"""The synthetic ImageNet-layout dataset generator."""
import numpy as np
import pytest
from PIL import Image

from mvig2_mm.testing.synthetic_imagenet import (class_names, generate, main,
                                                 make_image)


def test_layout_and_annotations(tmp_path):
    written = generate(str(tmp_path), num_classes=3, train_per_class=2,
                       val_per_class=1, size=32, seed=1)
    assert written == dict(train=6, val=3)
    lines = (tmp_path / 'meta' / 'train.txt').read_text().splitlines()
    assert lines[0] == 'n00000000/n00000000_0000.JPEG 0'
    assert sorted({int(line.split()[1]) for line in lines}) == [0, 1, 2]
    for line in lines:
        path, label = line.split()
        assert path.startswith(f'n{int(label):08d}/')
        with Image.open(tmp_path / 'train' / path) as image:
            assert image.size == (32, 32) and image.mode == 'RGB'
    assert len((tmp_path / 'meta' / 'val.txt').read_text().splitlines()) == 3
    assert (tmp_path / 'meta' / 'classes.txt').read_text().splitlines() == \
        class_names(3) == ['red circle', 'green square', 'blue triangle']


def test_loads_as_mmpretrain_imagenet(tmp_path):
    from mmpretrain.datasets import ImageNet
    generate(str(tmp_path), num_classes=2, train_per_class=2,
             val_per_class=2, size=32, ext='.png')
    dataset = ImageNet(data_root=str(tmp_path), split='val',
                       classes=str(tmp_path / 'meta' / 'classes.txt'))
    assert len(dataset) == 4
    assert dataset.CLASSES == ('red circle', 'green square')
    assert dataset.get_gt_labels().tolist() == [0, 0, 1, 1]


def test_deterministic_and_class_dependent():
    a = np.asarray(make_image(0, 48, np.random.default_rng(3)))
    b = np.asarray(make_image(0, 48, np.random.default_rng(3)))
    c = np.asarray(make_image(1, 48, np.random.default_rng(3)))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # every class has its own (shape, colour): all 64 names are distinct
    assert len(set(class_names(64))) == 64


def test_cli_and_errors(tmp_path, capsys):
    assert main([str(tmp_path), '--num-classes', '2', '--train-per-class',
                 '1', '--val-per-class', '1', '--size', '16']) == 0
    out = capsys.readouterr().out
    assert 'Wrote 2 training and 2 validation images' in out
    with pytest.raises(ValueError, match='num_classes must be in'):
        generate(str(tmp_path), num_classes=65)
    with pytest.raises(ValueError, match='size must be'):
        generate(str(tmp_path), size=8)
