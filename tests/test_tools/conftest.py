"""Fixtures of the tool tests: small synthetic datasets (once a session)."""
import pytest


@pytest.fixture(scope='session')
def coco_root(tmp_path_factory):
    """8 train / 4 val images of 96 px in COCO format."""
    from mvig2_mm.testing.synthetic_coco import generate
    root = tmp_path_factory.mktemp('coco')
    generate(str(root), num_train=8, num_val=4, image_size=(96, 96),
             min_size=16, max_size=40)
    return root


@pytest.fixture(scope='session')
def ade_root(tmp_path_factory):
    """8 training / 4 validation images of 96 px in the ADE20K layout."""
    from mvig2_mm.testing.synthetic_ade20k import generate
    root = tmp_path_factory.mktemp('ade')
    generate(str(root), num_train=8, num_val=4, image_size=(96, 96),
             min_size=16, max_size=40)
    return root


@pytest.fixture(scope='session')
def imagenet_root(tmp_path_factory):
    """8 classes, 2 training / 1 validation image each, 64 px."""
    from mvig2_mm.testing.synthetic_imagenet import generate
    root = tmp_path_factory.mktemp('imagenet')
    generate(str(root), num_classes=8, train_per_class=2, val_per_class=1,
             size=64)
    return root
