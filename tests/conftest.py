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
        def state_dict(variant):
            manifest = json.loads(
                (path / f'mobilevigv2_{variant}.manifest.json').read_text())
            return reference_weights.reference_state_dict(manifest)

        @staticmethod
        def expected(variant):
            return torch.load(path / f'mobilevigv2_{variant}.expected.pt',
                              weights_only=True)

        inputs = staticmethod(reference_weights.reference_inputs)

    return Reference


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _isolated_default_scope():
    """Each test starts without a current mmengine default scope.

    ``DefaultScope`` is process-global: a scope set by one test (e.g.
    ``init_default_scope('mmseg')``) would redirect later builds from another
    library's registry to the wrong scope.
    """
    from mmengine.registry import DefaultScope
    saved = dict(DefaultScope._instance_dict)
    DefaultScope._instance_dict.clear()
    yield
    DefaultScope._instance_dict.clear()
    DefaultScope._instance_dict.update(saved)
