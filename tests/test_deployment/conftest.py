"""Fixtures of the 8-bit export tests: a demo classifier trained here."""
import os.path as osp
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
#: The classification demo (tools/demo.py), trained for two epochs: enough
#: for confident logits, whose top-1 an 8-bit export must keep.
DEMO_CONFIG = REPO / 'configs/classification/demo/mvig2_ti_shapes.py'
EPOCHS = 2


@pytest.fixture(scope='session')
def demo_classifier(tmp_path_factory):
    """The demo classifier trained on the demo's synthetic dataset: its
    config (``config``, the data under the fixture's folder) and its
    checkpoint (``checkpoint``)."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mvig2_mm.testing.synthetic_imagenet import generate
    root = tmp_path_factory.mktemp('demo_cls')
    data_root = str(root / 'shapes_in1k')
    generate(data_root, num_classes=8, train_per_class=60, val_per_class=20,
             size=64)  # as tools/demo.py
    cfg = Config.fromfile(str(DEMO_CONFIG))
    for loader in (cfg.train_dataloader, cfg.val_dataloader,
                   cfg.test_dataloader):
        loader.dataset.data_root = data_root
        loader.dataset.classes = osp.join(data_root, 'meta', 'classes.txt')
    cfg.train_cfg.max_epochs = cfg.train_cfg.val_interval = EPOCHS
    cfg.param_scheduler[1].update(T_max=EPOCHS, end=EPOCHS)
    cfg.default_hooks.checkpoint.interval = EPOCHS
    cfg.work_dir = str(root / 'work_dir')
    config = str(root / 'mvig2_ti_shapes.py')
    cfg.dump(config)
    Runner.from_cfg(cfg).train()
    return SimpleNamespace(config=config,
                           checkpoint=str(root / 'work_dir' /
                                          f'epoch_{EPOCHS}.pth'))
