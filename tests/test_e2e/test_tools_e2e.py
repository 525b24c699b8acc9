"""End to end, as a user runs the tools (slow: a few training iterations on
CPU per test, well under two minutes each on 2 cores):

- tools/dist_train.sh, 2 processes on CPU, trains the demo Mask R-CNN and
  Semantic FPN for 4 iterations on tiny synthetic datasets, then
  tools/test.py evaluates the checkpoint that training wrote (COCO box and
  mask AP, mIoU);
- the README's "Published weights" commands on stand-in published files
  (the reference's layouts: an ImageNet training checkpoint, an mmdet 2.28
  Mask R-CNN, an mmseg 0.30 Semantic FPN) as they are, from outside the
  repository with no network: tools/dist_test.sh / tools/test.py evaluate
  them (COCO AP, mIoU, top-1 accuracy), tools/infer.py draws predictions;
- tools/train.py killed (SIGKILL) after its first checkpoint resumes from it
  with --resume and finishes.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / 'tools'
DET_CONFIG = REPO / 'configs/detection/demo/maskrcnn_mvig2_ti_shapes.py'
SEG_CONFIG = REPO / 'configs/segmentation/demo/semfpn_mvig2_ti_shapes.py'
CLS_CONFIG = REPO / 'configs/classification/mvig2_ti_in1k.py'
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')
# 4 iterations of 2 images per process, a checkpoint at the end
SHORT_RUN = ['train_cfg.max_iters=4', 'train_cfg.val_interval=4',
             'train_dataloader.batch_size=2',
             'default_hooks.checkpoint.interval=4',
             'default_hooks.logger.interval=1']

pytestmark = pytest.mark.slow


def env() -> dict:
    """One thread per process (torchrun's default too), so that two
    processes on two cores do not slow each other down."""
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


def run(*args, timeout=240, cwd=REPO):
    proc = subprocess.run([*map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env(), timeout=timeout)
    assert proc.returncode == 0, \
        f'{args[:3]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}'
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def det_data(root: Path) -> list:
    from mvig2_mm.testing.synthetic_coco import generate
    generate(str(root), num_train=8, num_val=4, image_size=(96, 96),
             min_size=16, max_size=40)
    ann_file = root / 'annotations' / 'instances_val.json'
    return [f'{loader}.dataset.data_root={root}/' for loader in LOADERS] + [
        f'val_evaluator.ann_file={ann_file}',
        f'test_evaluator.ann_file={ann_file}']


def seg_data(root: Path) -> list:
    from mvig2_mm.testing.synthetic_ade20k import generate
    generate(str(root), num_train=8, num_val=4, image_size=(96, 96),
             min_size=16, max_size=40)
    return [f'{loader}.dataset.data_root={root}/' for loader in LOADERS]


def dist_train(config, work_dir, options):
    """tools/dist_train.sh CONFIG 2 on CPU; returns the checkpoint."""
    proc = run('bash', TOOLS / 'dist_train.sh', config, 2, '--work-dir',
               work_dir, '--cfg-options', *options, *SHORT_RUN)
    log = proc.stdout + proc.stderr
    assert 'distributed training on CPU with the gloo backend' in log
    assert 'Iter(train) [4/4]' in log
    checkpoint = work_dir / 'iter_4.pth'
    assert checkpoint.is_file()
    return checkpoint


def dist_train_env(monkeypatch):
    monkeypatch.setenv('PYTHON', sys.executable)
    monkeypatch.setenv('PORT', str(free_port()))


def metric(output: str, key: str) -> float:
    match = re.search(rf'{re.escape(key)}: (-?[\d.]+)', output)
    assert match, f'{key} not in the output:\n{output[-3000:]}'
    return float(match.group(1))


def test_detection_dist_train_then_test(tmp_path, monkeypatch):
    dist_train_env(monkeypatch)
    options = det_data(tmp_path / 'coco')
    checkpoint = dist_train(DET_CONFIG, tmp_path / 'work_dir', options)
    proc = run(sys.executable, TOOLS / 'test.py', DET_CONFIG, checkpoint,
               '--work-dir', tmp_path / 'test', '--cfg-options', *options)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert -1 <= metric(proc.stdout, key) <= 1


def test_segmentation_dist_train_then_test(tmp_path, monkeypatch):
    dist_train_env(monkeypatch)
    options = seg_data(tmp_path / 'ade')
    checkpoint = dist_train(SEG_CONFIG, tmp_path / 'work_dir', options)
    proc = run(sys.executable, TOOLS / 'test.py', SEG_CONFIG, checkpoint,
               '--work-dir', tmp_path / 'test', '--cfg-options', *options)
    assert 0 <= metric(proc.stdout, 'mIoU') <= 100
    assert 'Iter(test) [4/4]' in proc.stdout  # every validation image
    # the deploy-form backbone (README: faster inference) scores the same
    deployed = tmp_path / 'deploy.pth'
    run(sys.executable, TOOLS / 'model_converters/reparameterize_model.py',
        SEG_CONFIG, checkpoint, deployed)
    deploy_proc = run(sys.executable, TOOLS / 'test.py', SEG_CONFIG, deployed,
                      '--work-dir', tmp_path / 'test_deploy', '--cfg-options',
                      *options, 'model.backbone.deploy=True')
    for key in ('aAcc', 'mIoU', 'mAcc'):
        assert metric(deploy_proc.stdout, key) == pytest.approx(
            metric(proc.stdout, key), abs=0.05)


# Imported first by every Python process of a test (``sitecustomize``):
# connections to anything but this machine fail, as they would offline.
NO_NETWORK = """
import socket

_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo
LOCAL = ('127.0.0.1', 'localhost', '::1', '0.0.0.0', None)


def _check(address):
    if isinstance(address, tuple) and address[0] not in LOCAL:
        raise OSError(f'no network in this test (connect to {address})')


def getaddrinfo(host, *args, **kwargs):
    if isinstance(host, bytes):
        host = host.decode()
    if host not in LOCAL and host != socket.gethostname():
        raise OSError(f'no network in this test (look up {host})')
    return _getaddrinfo(host, *args, **kwargs)


def connect(self, address):
    _check(address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(address)
    return _connect_ex(self, address)


socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
socket.getaddrinfo = getaddrinfo
"""


@pytest.fixture
def offline_user(tmp_path, monkeypatch):
    """A user's shell: a working directory outside the repository (so no
    ``checkpoints/`` folder) and no network for any Python process."""
    home = tmp_path / 'user'
    guard = tmp_path / 'no_network'
    home.mkdir()
    guard.mkdir()
    (guard / 'sitecustomize.py').write_text(NO_NETWORK)
    monkeypatch.setenv('PYTHONPATH', str(guard))
    monkeypatch.setenv('PYTHON', sys.executable)
    monkeypatch.setenv('PORT', str(free_port()))
    proc = subprocess.run(
        [sys.executable, '-c', 'import urllib.request; urllib.request.'
         'urlopen("https://download.openmmlab.com", timeout=5)'],
        capture_output=True, text=True, env=env())
    assert 'no network in this test' in proc.stderr, proc.stderr[-2000:]
    return home


def coco_layout(root: Path) -> list:
    """A synthetic COCO set where the COCO configs look for it
    (``annotations/instances_val2017.json``, ``val2017/``), its
    categories named as COCO's 80 (the shapes take the first three)."""
    import json

    from mmdet.datasets import CocoDataset
    det_data(root)
    (root / 'val').rename(root / 'val2017')
    ann = json.loads((root / 'annotations/instances_val.json').read_text())
    ann['categories'] = [dict(id=i + 1, name=name) for i, name in
                         enumerate(CocoDataset.METAINFO['classes'])]
    ann_file = root / 'annotations/instances_val2017.json'
    ann_file.write_text(json.dumps(ann))
    return [f'test_dataloader.dataset.data_root={root}/',
            f'test_evaluator.ann_file={ann_file}']


def test_published_weights_commands_offline(published, offline_user,
                                            tmp_path):
    """The README's "Published weights" commands, as a user runs them with
    only the published files (stand-ins in the authors' layouts: an mmdet
    2.28 Mask R-CNN-M, an mmseg 0.30 Semantic FPN-M, an ImageNet training
    checkpoint of M): from outside the repository, with no ``checkpoints/``
    folder and no network, each runs to its metric on a few synthetic
    images (two processes on CPU for ``dist_test.sh``)."""
    def user_run(*args):
        return run(*args, cwd=offline_user, timeout=400)

    det_config = REPO / 'configs/detection/maskrcnn_mvig2_m.py'
    det_file = tmp_path / 'mask_rcnn_mobilevigv2_m_coco.pth'
    published.whole_model(det_config, 'm', det_file, 'mmdet')
    # near-uniform scores over 81 classes stay under the config's score
    # threshold (0.05): make the first class likely, so that there are
    # detections to evaluate and draw
    content = torch.load(det_file, weights_only=True)
    content['state_dict']['roi_head.bbox_head.fc_cls.bias'][0] += 6
    content['meta']['CLASSES'] = tuple(f'thing{i}' for i in range(80))
    torch.save(content, det_file)
    coco = coco_layout(tmp_path / 'coco')
    proc = user_run('bash', TOOLS / 'dist_test.sh', det_config, det_file, 2,
                    '--work-dir', tmp_path / 'test_det', '--cfg-options',
                    *coco)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert -1 <= metric(proc.stdout, key) <= 1
    # infer.py names the classes that the mmdet 2.x file's meta['CLASSES']
    # holds (set above: others than the config's COCO names)
    proc = user_run(sys.executable, TOOLS / 'infer.py', det_config, det_file,
                    tmp_path / 'coco/val2017/000001.png', '--out-dir',
                    tmp_path / 'infer', '--score-thr', '0')
    log = proc.stdout + proc.stderr
    assert re.search(r'000001\.png: \d+ objects scoring >= 0\.0: thing\d+ ',
                     log), log[-2000:]
    assert (tmp_path / 'infer/vis/000001.png').is_file()

    seg_config = REPO / 'configs/segmentation/semfpn_mvig2_m.py'
    seg_file = tmp_path / 'fpn_mobilevigv2_m_ade20k.pth'
    published.whole_model(seg_config, 'm', seg_file, 'mmseg')
    proc = user_run('bash', TOOLS / 'dist_test.sh', seg_config, seg_file, 2,
                    '--work-dir', tmp_path / 'test_seg', '--cfg-options',
                    *seg_data(tmp_path / 'ade')[2:])
    assert 0 <= metric(proc.stdout, 'mIoU') <= 100
    assert 'Iter(test) [2/2]' in proc.stdout  # 4 images, 2 per process

    from mvig2_mm.testing.synthetic_imagenet import generate
    root = tmp_path / 'imagenet'
    generate(str(root), num_classes=5, train_per_class=0, val_per_class=2,
             size=64)
    cls_file = tmp_path / 'mobilevigv2_m.pth'
    published.imagenet('m', cls_file)
    # the config distils from a teacher whose checkpoint is a URL: testing
    # must neither build it nor download it
    proc = user_run(sys.executable, TOOLS / 'test.py',
                    REPO / 'configs/classification/mvig2_m_in1k.py', cls_file,
                    '--work-dir', tmp_path / 'test_cls', '--cfg-options',
                    f'test_dataloader.dataset.data_root={root}',
                    'test_dataloader.batch_size=5',
                    'test_dataloader.num_workers=0',
                    'test_dataloader.persistent_workers=False')
    assert 0 <= metric(proc.stdout, 'accuracy/top1') <= 100
    assert 'Epoch(test) [2/2]' in proc.stdout  # the 10 images, by 5
    assert 'Loaded the distillation teacher' not in proc.stdout + proc.stderr


def test_killed_training_resumes(tmp_path):
    """SIGKILL after the first checkpoint; --resume continues from the
    checkpoint named in the work dir's last_checkpoint and finishes."""
    options = det_data(tmp_path / 'coco') + [
        'train_cfg.max_iters=8', 'train_cfg.val_interval=8',
        'train_dataloader.batch_size=2', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=2',
        # keep every checkpoint: mmengine deletes the old one before it
        # writes the new, and the kill could fall in between
        'default_hooks.checkpoint.max_keep_ckpts=-1']
    work_dir = tmp_path / 'work_dir'
    command = [sys.executable, str(TOOLS / 'train.py'), str(DET_CONFIG),
               '--work-dir', str(work_dir), '--cfg-options', *options]
    last = work_dir / 'last_checkpoint'  # written once a checkpoint is saved
    with open(tmp_path / 'first.log', 'w') as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                cwd=REPO, env=env())
        try:
            deadline = time.time() + 180
            while proc.poll() is None and time.time() < deadline and not (
                    last.is_file() and last.read_text().strip()):
                time.sleep(0.05)
            assert proc.poll() is None, 'training ended before the kill'
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    saved = last.read_text().strip()
    step = int(re.search(r'iter_(\d+)\.pth$', saved).group(1))
    assert 2 <= step < 8 and Path(saved).is_file()

    proc = run(*command, '--resume')
    assert f'Auto resumed from the latest checkpoint {saved}' in proc.stdout
    assert f'resumed epoch: 0, iter: {step}' in proc.stdout
    trained = [int(i) for i in
               re.findall(r'Iter\(train\) \[\s*(\d+)/8\]', proc.stdout)]
    assert trained[0] == step + 1 and trained[-1] == 8
    assert (work_dir / 'iter_8.pth').is_file()
    assert last.read_text().strip().endswith('iter_8.pth')
