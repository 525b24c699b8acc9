"""The ``--backend`` option of ``tools/test.py`` and ``tools/infer.py``:
PyTorch (the default: CHECKPOINT is a checkpoint) or ONNX Runtime
(CHECKPOINT is the folder that ``tools/deployment/mmdeploy_convert.py``
wrote; its ``end2end.onnx`` runs through mmdeploy's wrapper,
:func:`mvig2_mm.deployment.end2end.backend_model`).

What the tools share of the ONNX Runtime path: the option, and the checks
that stop a run before any work (:func:`check_onnxruntime`), each in one
line that names the problem and its fix.
"""
import argparse
import os.path as osp

from mmengine.config import Config

from ..deployment.end2end import deploy_config_path
from ..deployment.mmdeploy_compat import check_mmdeploy
from ..errors import ConfigError
from .tool import ToolError

__all__ = [
    'BACKENDS', 'CONVERT_TOOL', 'ONNX_FILE', 'add_backend_argument',
    'check_onnxruntime'
]

BACKENDS = ('pytorch', 'onnxruntime')
#: The tool that writes the folder, and the model it holds.
CONVERT_TOOL = 'tools/deployment/mmdeploy_convert.py'
ONNX_FILE = 'end2end.onnx'


def add_backend_argument(parser: argparse.ArgumentParser) -> None:
    """``--backend {pytorch,onnxruntime}``."""
    parser.add_argument('--backend', choices=BACKENDS, default='pytorch',
                        help=f'onnxruntime: CHECKPOINT is the folder that '
                        f'{CONVERT_TOOL} wrote (a detector or segmentor); '
                        f"its {ONNX_FILE} runs through mmdeploy's ONNX "
                        f'Runtime wrapper')


def check_onnxruntime(cfg: Config, folder: str,
                      compile: bool = False) -> str:
    """Check that the model ``folder`` holds can run with ONNX Runtime for
    the config ``cfg`` (before any work); return its ONNX file.

    Args:
        cfg (Config): The model config (the one converted).
        folder (str): The CHECKPOINT argument: the converted folder.
        compile (bool): Whether ``--compile`` was given.

    Raises:
        ToolError: ``folder`` holds no ``end2end.onnx``, ``--compile`` was
            given, or the config's task has no deploy config.
        MMDeployVersionError: mmdeploy is missing or of another version.
    """
    onnx_file = osp.join(folder, ONNX_FILE)
    if not osp.isfile(onnx_file):
        raise ToolError(f'{onnx_file} not found: with --backend onnxruntime '
                        f'CHECKPOINT is the folder that {CONVERT_TOOL} '
                        f'wrote')
    if compile:
        raise ToolError('--compile compiles PyTorch models: not with '
                        '--backend onnxruntime')
    try:
        deploy_config_path(cfg)
    except ConfigError as e:
        raise ToolError(f"the config's default_scope is "
                        f"{cfg.get('default_scope')!r}: --backend "
                        f'onnxruntime runs the mmdet and mmseg models that '
                        f'{CONVERT_TOOL} converts (a classifier: its '
                        f'checkpoint, --backend pytorch)') from e
    check_mmdeploy()
    return onnx_file
