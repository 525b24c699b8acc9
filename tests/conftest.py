"""Shared fixtures: the reference parity data in ../shared/reference."""
import json
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    path = Path(os.environ.get('MVIG2_MM_REFERENCE',
                               REPO.parent / 'shared' / 'reference'))
    if not (path / 'reference_weights.py').is_file():
        raise FileNotFoundError(
            f'Reference parity data not found in {path}: check out shared/ '
            f'beside the repository or set MVIG2_MM_REFERENCE.')
    return path


@pytest.fixture(scope='session')
def reference():
    """Access to the reference manifests, stand-in weights and outputs."""
    path = reference_dir()
    sys.path.insert(0, str(path))
    try:
        import reference_weights
    finally:
        sys.path.remove(str(path))

    class Reference:
        dir = path

        @staticmethod
        def state_dict(variant, family='mobilevigv2'):
            """``family``: 'mobilevigv2', or 'mobilevig' for MobileViG."""
            manifest = json.loads(
                (path / f'{family}_{variant}.manifest.json').read_text())
            return reference_weights.reference_state_dict(manifest)

        @staticmethod
        def expected(variant, family='mobilevigv2'):
            return torch.load(path / f'{family}_{variant}.expected.pt',
                              weights_only=True)

        inputs = staticmethod(reference_weights.reference_inputs)

    return Reference


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    # `make test` runs one pytest-xdist worker per core: a test's threads
    # share the cores with the other workers' (oversubscribed OpenMP
    # threads slow every worker down)
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', 1))
    torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // workers)))


@pytest.fixture(autouse=True)
def _isolated_mmengine_globals():
    """Each test starts without a current mmengine default scope, and the
    mmengine loggers it makes end with it.

    Both are process-global (mmengine's ``ManagerMixin`` instances): a
    scope set by one test (e.g. ``init_default_scope('mmseg')``) would
    redirect later builds from another library's registry to the wrong
    scope; an ``MMLogger`` writes to the ``sys.stdout`` of the moment it was
    made, and ``print_log(logger='current')`` goes to the newest one, so a
    logger made under one test's output capture would go on writing to it
    after pytest closed it (a later test reading its stderr would find
    logging's 'I/O operation on closed file' report and its traceback).
    """
    from mmengine.logging import MMLogger
    from mmengine.registry import DefaultScope
    saved = {cls: dict(cls._instance_dict) for cls in (DefaultScope, MMLogger)}
    DefaultScope._instance_dict.clear()
    yield
    for cls, instances in saved.items():
        cls._instance_dict.clear()
        cls._instance_dict.update(instances)


@pytest.fixture(scope='session')
def published(reference):
    """Stand-in published files, in the layouts the authors saved them.

    The backbone tensors are the reference stand-in weights (so features can
    be compared with ``reference.expected``); every other tensor (neck,
    heads) is initialised as the library does and then moved off its
    initial value by a little noise, so that a part left at its initial value
    is told apart from a loaded one while the model still predicts something.
    """
    import argparse
    from collections import OrderedDict

    from mmengine.config import Config
    from mmengine.registry import DATASETS, MODELS

    def backbone_keys(variant, family):
        return OrderedDict(
            (f'backbone.{k}', v) for k, v in reference.state_dict(
                variant, family).items()
            if k.startswith(('stem.', 'backbone.', 'local_backbone.')))

    def perturbed(state_dict, seed):
        g = torch.Generator().manual_seed(seed)
        return OrderedDict(
            (k, v + 0.01 * torch.randn(v.shape, generator=g)
             if v.is_floating_point() else v.clone())
            for k, v in state_dict.items())

    class Published:

        @staticmethod
        def imagenet(variant, path, family='mobilevigv2'):
            """A timm-style ImageNet training checkpoint: live and EMA
            weights, optimizer state, ``args`` (an argparse.Namespace)."""
            weights = reference.state_dict(variant, family)
            ema = OrderedDict((k, v + 1 if v.is_floating_point() else v)
                              for k, v in weights.items())
            torch.save(dict(state_dict=weights, state_dict_ema=ema,
                            optimizer=dict(state={}, param_groups=[]),
                            epoch=299, scaler={},
                            args=argparse.Namespace(
                                model=f'{family}_{variant}')), path)
            return weights

        @staticmethod
        def whole_model(config, variant, path, library, seed=1,
                        family='mobilevigv2'):
            """An mmdet 2.28 / mmseg 0.30 file of ``config``'s model (a
            MobileViGv2 ``variant`` backbone): reference backbone keys under
            ``backbone.``, the other modules as mmdet 3 / mmseg 1 name them
            (unchanged since 2.x / 0.x), ``meta`` with ``CLASSES`` (and
            mmseg's ``PALETTE``)."""
            cfg = Config.fromfile(str(config))
            cfg.model.backbone.init_cfg = None
            scope = cfg.default_scope
            with MODELS.switch_scope_and_registry(scope) as registry:
                model = registry.build(cfg.model)
            torch.manual_seed(seed)
            model.init_weights()
            others = OrderedDict((k, v) for k, v in model.state_dict().items()
                                 if not k.startswith('backbone.'))
            state_dict = backbone_keys(variant, family)
            state_dict.update(perturbed(others, seed))
            dataset = cfg.test_dataloader.dataset
            with DATASETS.switch_scope_and_registry(scope) as datasets:
                meta = dict(datasets.get(dataset.type).METAINFO)
            meta.update(dataset.get('metainfo') or {})
            file_meta = dict(CLASSES=tuple(meta['classes']), epoch=12,
                             config='# the mmdet 2.x / mmseg 0.x config')
            if library == 'mmseg':
                file_meta.update(mmseg_version='0.30.0',
                                 PALETTE=[list(c) for c in meta['palette']])
            else:
                file_meta.update(mmdet_version='2.28.2')
            torch.save(dict(meta=file_meta, state_dict=state_dict,
                            optimizer=dict(state={}, param_groups=[])), path)
            return state_dict

    return Published
