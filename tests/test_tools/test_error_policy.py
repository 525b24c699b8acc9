"""The tools' error policy (mvig2_mm/cli/tool.py): a listed mistake of the
user's is one line, ``--debug`` adds its traceback, and any other error (a
bug, in our code or in a user's own module) keeps its traceback; no
``pkg_resources`` deprecation warnings."""
import importlib
import os
import subprocess
import sys

import pytest

from mvig2_mm.cli.tool import ToolError, tool_main, user_error_message
from mvig2_mm.errors import ConfigError
from mvig2_mm.weights import CheckpointMismatchError
from tool_helpers import (CONFIGS, REPO, assert_one_line_error, data_options,
                          run_tool)

TOOLS = ['tools.train', 'tools.test', 'tools.infer', 'tools.demo',
         'tools.analysis_tools.get_flops', 'tools.deployment.pytorch2onnx',
         'tools.deployment.pytorch2coreml',
         'tools.model_converters.mobilevigv2_to_mm',
         'tools.model_converters.reparameterize_model',
         'tools.misc.swap_backbone']

USER_MODULE = '''\
"""A user's own backbone with a bug."""
from mmdet.registry import MODELS
from mmengine.model import BaseModule

from mvig2_mm.models import MobileViGv2


@MODELS.register_module()
class UserBackbone(BaseModule):
    """MobileViGv2, wrapped."""

    def __init__(self, **kwargs):
        super().__init__()
        self.body = MobileViGv2(**kwargs)

    def forward(self, x):
        raise TypeError('user bug')
'''
BUG_LINE = 1 + USER_MODULE.splitlines().index(
    "        raise TypeError('user bug')")


@pytest.fixture
def user_config(tmp_path):
    """The demo detector with the user's backbone (``custom_imports`` of a
    module on PYTHONPATH); returns (config, module file)."""
    module = tmp_path / 'user_modules' / 'user_backbone.py'
    module.parent.mkdir()
    module.write_text(USER_MODULE)
    config = tmp_path / 'user_det.py'
    config.write_text(
        f"_base_ = '{CONFIGS['det']}'\n"
        "custom_imports = dict(imports=['mvig2_mm', 'user_backbone'], "
        "allow_failed_imports=False)\n"
        "model = dict(backbone=dict(type='UserBackbone'))\n")
    return config, module


@pytest.mark.parametrize('debug', [False, True])
def test_a_bug_in_a_user_module_keeps_its_traceback(user_config, coco_root,
                                                    tmp_path, debug):
    config, module = user_config
    proc = run_tool('train.py', config, '--work-dir', tmp_path / 'work',
                    *(['--debug'] if debug else []), '--cfg-options',
                    *data_options('det', coco_root), 'train_cfg.max_iters=1',
                    env=dict(PYTHONPATH=str(module.parent)))
    assert proc.returncode != 0
    err = proc.stderr
    assert 'Traceback (most recent call last)' in err, err[-3000:]
    assert f'File "{module}", line {BUG_LINE}, in forward' in err, \
        err[-3000:]
    assert err.strip().splitlines()[-1] == 'TypeError: user bug'
    assert 'tools/train.py: error:' not in err


def test_debug_prints_the_traceback_then_the_same_line(coco_root, tmp_path):
    """An unknown arch: without --debug one line
    (test_checkpoint_errors.py), with it the traceback down to the
    ConfigError raised by the backbone, then that line. No pkg_resources
    warning in a real run."""
    proc = run_tool('train.py', CONFIGS['det'], '--work-dir', tmp_path,
                    '--debug', '--cfg-options',
                    *data_options('det', coco_root), 'model.backbone.arch=xl')
    assert proc.returncode == 1
    err = proc.stderr
    assert 'Traceback (most recent call last)' in err
    assert "mvig2_mm.errors.ConfigError: Unavailable arch 'xl'" in err
    assert err.strip().splitlines()[-1].startswith(
        'tools/train.py: error: cannot build the model of '
        "maskrcnn_mvig2_ti_shapes.py: Unavailable arch 'xl'. Choose one of")
    assert 'pkg_resources' not in err


def test_unknown_type_is_one_line(coco_root, tmp_path):
    proc = run_tool('train.py', CONFIGS['det'], '--work-dir', tmp_path,
                    '--cfg-options', *data_options('det', coco_root),
                    'model.backbone.type=NoSuchBackbone')
    assert_one_line_error(
        proc, 'cannot build the model of maskrcnn_mvig2_ti_shapes.py: '
        'NoSuchBackbone is not in the mmdet::model registry')


def test_help_prints_no_pkg_resources_warning():
    proc = run_tool('train.py', '--help')
    assert proc.returncode == 0
    assert '--debug' in proc.stdout
    assert 'pkg_resources' not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize('name', TOOLS)
def test_every_tool_has_debug(name, capsys):
    tool = importlib.import_module(name)
    with pytest.raises(SystemExit) as exc:
        tool.parse_args(['--help'])
    assert exc.value.code == 0
    help_text = capsys.readouterr().out
    assert '--debug' in help_text
    assert help_text.startswith(f'usage: tools/{name[6:].replace(".", "/")}'
                                f'.py ')


@pytest.mark.slow
def test_one_line_in_a_distributed_run(coco_root, tmp_path):
    """Two processes (torchrun, gloo on CPU): a rank says the one line
    after leaving the process group, and the run ends (torchrun stops the
    other rank once the first has failed: it may not get to say it)."""
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    env = dict(PYTHON=sys.executable, PORT=str(port), OMP_NUM_THREADS='1')
    proc = subprocess.run(
        ['bash', str(REPO / 'tools/dist_train.sh'), str(CONFIGS['det']), '2',
         '--work-dir', str(tmp_path), '--cfg-options',
         *data_options('det', coco_root), 'model.backbone.arch=xl'],
        capture_output=True, text=True, cwd=REPO, timeout=240,
        env=dict(os.environ, **env))
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines()
             if line.startswith('tools/train.py: error: ')]
    assert 1 <= len(lines) <= 2, proc.stderr[-3000:]
    assert all(line.startswith(
        'tools/train.py: error: cannot build the model of '
        "maskrcnn_mvig2_ti_shapes.py: Unavailable arch 'xl'. Choose one of ")
        and line.endswith('.') for line in lines), lines
    assert 'tools/train.py", line' not in proc.stderr  # no rank's traceback


# ------------------------------------------------------------ in process
def test_listed_mistakes_are_one_line():
    assert user_error_message(ToolError('bad value')) == 'bad value'
    assert user_error_message(ConfigError('bad arch\nmore')) == 'bad arch'
    assert user_error_message(CheckpointMismatchError('x does not fit')) == \
        'x does not fit'
    assert user_error_message(KeyError(
        'Foo is not in the mmdet::model registry. Please check whether ...')
    ).startswith('Foo is not in the mmdet::model registry.')
    assert user_error_message(FileNotFoundError(
        2, 'No such file or directory', '/data/a.json')) == \
        'No such file or directory: /data/a.json'
    # re-raised by a DataLoader worker: the original error's message
    assert user_error_message(ConfigError(
        'Caught ConfigError in DataLoader worker process 0.\n'
        'Original Traceback (most recent call last):\n'
        '  File "x.py", line 1, in f\n'
        'mvig2_mm.errors.ConfigError: scale must be positive')) == \
        'scale must be positive'


def test_other_errors_are_bugs():
    for exc in (TypeError('user bug'), KeyError('state_dict'),
                ValueError('x'), AssertionError('y'), RuntimeError('z')):
        assert user_error_message(exc) is None


def test_tool_main(capsys):
    @tool_main('tools/x.py')
    def main(argv=None):
        if argv == ['bug']:
            raise TypeError('a bug')
        if argv[0] == 'mistake':
            raise ConfigError('bad value')
        return 0

    assert main(['ok']) == 0
    assert main(['mistake']) == 1
    assert capsys.readouterr().err == 'tools/x.py: error: bad value\n'
    assert main(['mistake', '--debug']) == 1
    err = capsys.readouterr().err
    assert err.startswith('Traceback (most recent call last)')
    assert err.endswith('mvig2_mm.errors.ConfigError: bad value\n'
                        'tools/x.py: error: bad value\n')
    with pytest.raises(TypeError, match='a bug'):
        main(['bug'])


def test_tool_error_stops_a_helper_called_on_its_own():
    """Outside ``tool_main`` (a tool's helper from a script) it still stops
    as ``sys.exit(message)`` would."""
    with pytest.raises(SystemExit) as exc:
        raise ToolError('--out must be a .pkl file')
    assert exc.value.code == '--out must be a .pkl file'
