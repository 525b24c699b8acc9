"""Print the environment: ``python -m mvig2_mm.utils.collect_env``."""
import importlib
import platform
import sys
from collections import OrderedDict
from typing import Dict


def _version(module: str) -> str:
    try:
        return importlib.import_module(module).__version__
    except ImportError as e:
        return f'not installed ({e})'


def mmcv_ops_status() -> str:
    """'compiled' when mmcv's C++ ops load, else why not."""
    try:
        from mmcv.ops import RoIAlign, batched_nms, nms  # noqa: F401
        return 'compiled'
    except ImportError as e:
        return f'MISSING ({e})'


def collect_env() -> Dict[str, str]:
    """Versions of Python, torch, the OpenMMLab stack and this package."""
    import torch
    env: Dict[str, str] = OrderedDict()
    env['Python'] = sys.version.replace('\n', ' ')
    env['Platform'] = platform.platform()
    env['PyTorch'] = torch.__version__
    env['CUDA available'] = str(torch.cuda.is_available())
    env['CPU threads'] = str(torch.get_num_threads())
    env['TorchVision'] = _version('torchvision')
    env['NumPy'] = _version('numpy')
    env['MMEngine'] = _version('mmengine')
    env['MMCV'] = _version('mmcv')
    env['MMCV ops'] = mmcv_ops_status()
    env['MMDetection'] = _version('mmdet')
    env['MMSegmentation'] = _version('mmseg')
    env['MMPretrain'] = _version('mmpretrain')
    env['mvig2_mm'] = _version('mvig2_mm')
    return env


def main() -> None:
    for name, value in collect_env().items():
        print(f'{name}: {value}')


if __name__ == '__main__':
    main()
