import json

import cv2
import numpy as np
import pytest

from mvig2_mm.testing import synthetic_ade20k, synthetic_coco


def test_synthetic_coco_is_valid_coco(tmp_path):
    paths = synthetic_coco.generate(str(tmp_path), num_train=6, num_val=3,
                                    image_size=(96, 128), min_size=16,
                                    max_size=40, seed=3)
    from pycocotools.coco import COCO
    coco = COCO(paths['train'])
    assert len(coco.getImgIds()) == 6
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())] == list(
        synthetic_coco.CLASSES)
    for ann in coco.loadAnns(coco.getAnnIds()):
        x, y, w, h = ann['bbox']
        assert 0 <= x and 0 <= y and x + w <= 128 and y + h <= 96
        mask = coco.annToMask(ann)
        assert abs(int(mask.sum()) - ann['area']) <= 0.25 * ann['area']
    img = cv2.imread(str(tmp_path / 'train' / '000001.png'))
    assert img.shape == (96, 128, 3)
    # deterministic for a seed
    again = synthetic_coco.generate(str(tmp_path / 'b'), 6, 3, (96, 128),
                                    min_size=16, max_size=40, seed=3)
    assert json.load(open(again['train'])) == json.load(open(paths['train']))


def test_synthetic_ade20k_label_maps(tmp_path):
    synthetic_ade20k.generate(str(tmp_path), num_train=4, num_val=2,
                              image_size=(96, 96), min_size=16, max_size=40)
    maps = sorted((tmp_path / 'annotations' / 'training').glob('*.png'))
    imgs = sorted((tmp_path / 'images' / 'training').glob('*.jpg'))
    assert len(maps) == len(imgs) == 4
    for path in maps:
        label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        assert label.shape == (96, 96)
        assert set(np.unique(label)) <= {1, 2, 3, 4}  # 0 ("other") unused
        assert (label == 1).any()  # background present


def test_sizes_are_checked():
    with pytest.raises(ValueError, match='min_size <= max_size'):
        synthetic_coco.generate('/nonexistent', image_size=(40, 40))
