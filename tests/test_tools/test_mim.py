"""``mim`` knows the package (issue: training the OpenMMLab way).

- ``mim search mvig2_mm --model mobilevigv2`` lists the family's models of
  the three tasks from model-index.yml and the metafiles;
- a wheel carries ``mvig2_mm/.mim/`` (configs, tools, model-index.yml), so
  that mim finds them in a regular install too, not only in the editable one
  of ``make setup``;
- ``mim train``, ``mim test`` and ``mim run`` on the demo Mask R-CNN, run
  from outside the repository (slow: two training iterations on CPU).
"""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tool_helpers import CONFIGS, REPO, data_options

MIM = Path(sys.executable).with_name('mim')


def mim(*args, cwd, env=None, timeout=300):
    """``mim ARGS``, one thread; fails the test with its output."""
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               **(env or {}))
    proc = subprocess.run([str(MIM), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=timeout)
    assert proc.returncode == 0, \
        f'mim {args[:2]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc.stdout


def searched(output: str) -> dict:
    """``mim search`` output as {config id: {field: value}}."""
    models, current = {}, None
    for line in output.splitlines():
        if line.startswith('config id: '):
            current = models.setdefault(line.split(': ', 1)[1].strip(), {})
        elif current is not None and line.strip() and not line[0] == '-':
            field, _, value = line.partition(' ')
            current[field] = value.strip()
    return models


def metafile_models(family: str) -> dict:
    """{model name: training data} of ``family`` over the three metafiles."""
    names = {}
    for task in ('classification', 'detection', 'segmentation'):
        meta = yaml.safe_load(
            (REPO / 'configs' / task / 'metafile.yml').read_text())
        names.update({m['Name']: m['Metadata']['Training Data'].lower()
                      for m in meta['Models']
                      if m['In Collection'] == family})
    return names


@pytest.mark.parametrize('family', ['MobileViGv2', 'MobileViG'])
def test_search_lists_the_family_over_three_tasks(family, tmp_path):
    found = searched(mim('search', 'mvig2_mm', '--model', family.lower(),
                         cwd=tmp_path))
    expected = metafile_models(family)
    assert {'imagenet-1k', 'coco', 'ade20k'} <= set(expected.values())
    assert set(found) == set(expected)
    for name, info in found.items():
        assert info['model'] == family.lower()
        assert info['training_data'] == expected[name], name
        assert (REPO / info['config']).is_file()
    if family == 'MobileViGv2':
        assert found['maskrcnn_mvig2_m']['coco/box_ap'] == '42.5'
        assert found['mvig2_m_in1k']['imagenet-1k/top_1_accuracy'] == '81.7'


def test_wheel_carries_the_mim_files(tmp_path):
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', str(REPO), '-w', str(tmp_path)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel, = tmp_path.glob('mvig2_mm-*.whl')
    names = set(zipfile.ZipFile(wheel).namelist())
    mim_dir = 'mvig2_mm/.mim/'
    for path in ('model-index.yml', 'tools/train.py', 'tools/test.py',
                 'tools/infer.py', 'tools/dist_train.sh',
                 'tools/analysis_tools/benchmark.py',
                 'configs/detection/metafile.yml',
                 'configs/detection/maskrcnn_mvig2_m.py',
                 'configs/detection/_base_/maskrcnn_mvig2_base.py',
                 'configs/classification/demo/mvig2_ti_shapes.py'):
        assert mim_dir + path in names, path
    assert not [n for n in names if '__pycache__' in n or n.endswith('.pyc')]
    # installed as a regular package (no links to the repository), mim
    # finds the model index there
    site = tmp_path / 'site'
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '--no-deps',
                    '--target', str(site), str(wheel)], check=True,
                   capture_output=True)
    assert not (site / 'mvig2_mm' / '.mim').is_symlink()
    found = searched(mim('search', 'mvig2_mm', '--model', 'mobilevigv2',
                         cwd=tmp_path, env=dict(PYTHONPATH=str(site))))
    assert set(found) == set(metafile_models('MobileViGv2'))


@pytest.mark.slow
def test_mim_train_test_run_the_demo_detector(coco_root, tmp_path):
    """As the README shows, from a directory outside the repository: the
    config by its path for train, by its bare name (found in the package's
    .mim/configs) for test."""
    work_dir = tmp_path / 'work'
    options = data_options('det', coco_root) + [
        'train_cfg.max_iters=2', 'train_cfg.val_interval=2',
        'train_dataloader.batch_size=2',
        'default_hooks.checkpoint.interval=2']
    out = mim('train', 'mvig2_mm', CONFIGS['det'], '--gpus', '0',
              '--work-dir', work_dir, '--cfg-options', *options, cwd=tmp_path)
    assert 'Training finished successfully' in out
    assert '.mim/tools/train.py' in out
    checkpoint = work_dir / 'iter_2.pth'
    assert checkpoint.is_file()

    out = mim('test', 'mvig2_mm', CONFIGS['det'].name, '--checkpoint',
              checkpoint, '--gpus', '0', '--work-dir', tmp_path / 'test',
              '--cfg-options', *data_options('det', coco_root), cwd=tmp_path)
    assert 'Testing finished successfully' in out
    assert 'coco/bbox_mAP_50' in out

    image = sorted((coco_root / 'val').iterdir())[0]
    out = mim('run', 'mvig2_mm', 'infer', CONFIGS['det'], checkpoint, image,
              '--out-dir', tmp_path / 'infer', '--score-thr', '0',
              cwd=tmp_path)
    assert (tmp_path / 'infer' / 'preds' / f'{image.stem}.json').is_file()
