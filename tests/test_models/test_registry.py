"""type='MobileViGv2' builds from every downstream scope."""
import subprocess
import sys

import pytest


@pytest.mark.parametrize('backbone', ['MobileViGv2', 'MobileViG'])
@pytest.mark.parametrize('library', ['mmdet', 'mmseg', 'mmpretrain'])
def test_backbone_builds_from_library_registry(library, backbone):
    import importlib
    registry = importlib.import_module(f'{library}.registry').MODELS
    import mvig2_mm  # noqa: F401
    model = registry.build(
        dict(type=backbone, arch='ti', out_indices=(3, )))
    assert type(model).__name__ == backbone
    assert model.out_indices == (3, )


@pytest.mark.parametrize('scope', ['mmdet', 'mmseg', 'mmpretrain'])
def test_config_with_custom_imports_only(tmp_path, scope):
    """A fresh process that only has custom_imports finds the backbone."""
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "custom_imports = dict(imports=['mvig2_mm'], "
        "allow_failed_imports=False)\n"
        f"default_scope = '{scope}'\n"
        "backbone = dict(type='MobileViGv2', arch='ti')\n")
    code = (
        'from mmengine.config import Config\n'
        'from mmengine.registry import MODELS, init_default_scope\n'
        f'cfg = Config.fromfile({str(cfg)!r})\n'
        'init_default_scope(cfg.default_scope)\n'
        'print(type(MODELS.build(cfg.backbone)).__name__)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'MobileViGv2'


def test_head_registered_in_mmpretrain():
    from mmpretrain.registry import MODELS

    import mvig2_mm  # noqa: F401
    assert MODELS.get('MobileViGv2Head') is not None


@pytest.mark.parametrize('missing', ['mmdet', 'mmseg', 'mmpretrain'])
def test_package_works_with_a_library_missing(missing):
    code = (f'import sys; sys.modules[{missing!r}] = None\n'
            'import mvig2_mm\n'
            'from mmengine.registry import MODELS\n'
            "print(type(MODELS.build(dict(type='MobileViGv2', arch='ti')))"
            '.__name__)\n'
            'from mvig2_mm.models import heads\n'
            'print(heads.__all__)\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == 'MobileViGv2'
    assert lines[1] == ('[]' if missing == 'mmpretrain'
                        else "['MobileViGv2Head']")
