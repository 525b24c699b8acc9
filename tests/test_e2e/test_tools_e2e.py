"""End to end, as a user runs the tools (slow: a few training iterations on
CPU per test, well under two minutes each on 2 cores):

- tools/dist_train.sh, 2 processes on CPU, trains the demo Mask R-CNN and
  Semantic FPN for 4 iterations on tiny synthetic datasets, then
  tools/test.py evaluates the checkpoint that training wrote (COCO box and
  mask AP, mIoU);
- stand-in published files (the reference's layouts: an ImageNet training
  checkpoint, an mmdet 2.28 Mask R-CNN, an mmseg 0.30 Semantic FPN) as they
  are, evaluated by tools/test.py (top-1 accuracy, COCO AP, mIoU), and
  tools/infer.py naming the classes the mmdet 2.x file holds;
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


def run(*args, timeout=240):
    proc = subprocess.run([*map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env(), timeout=timeout)
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


def test_classification_published_weights(published, reference, tmp_path):
    """The published ImageNet file as it is (stand-in weights), evaluated
    with the ImageNet config (1000 classes) on a synthetic set whose labels
    are 0..4."""
    from mvig2_mm.testing.synthetic_imagenet import generate
    root = tmp_path / 'imagenet'
    generate(str(root), num_classes=5, train_per_class=0, val_per_class=2,
             size=64)
    original = tmp_path / 'mobilevigv2_ti.pth'
    published.imagenet('ti', original)
    proc = run(sys.executable, TOOLS / 'test.py', CLS_CONFIG, original,
               '--work-dir', tmp_path / 'test', '--cfg-options',
               f'test_dataloader.dataset.data_root={root}',
               'test_dataloader.batch_size=5', 'test_dataloader.num_workers=0',
               'test_dataloader.persistent_workers=False')
    assert 0 <= metric(proc.stdout, 'accuracy/top1') <= 100
    assert 'Epoch(test) [2/2]' in proc.stdout  # the 10 images, by 5


def test_detection_and_segmentation_published_weights(published, tmp_path):
    """Stand-in mmdet 2.28 / mmseg 0.30 files of the demo models, as they
    are: tools/test.py evaluates them on the synthetic sets, and
    tools/infer.py names the classes that the mmdet 2.x file's
    ``meta['CLASSES']`` holds."""
    coco = det_data(tmp_path / 'coco')
    det_file = tmp_path / 'mask_rcnn_published.pth'
    published.whole_model(DET_CONFIG, 'ti', det_file, 'mmdet')
    proc = run(sys.executable, TOOLS / 'test.py', DET_CONFIG, det_file,
               '--work-dir', tmp_path / 'test_det', '--cfg-options', *coco)
    for key in ('coco/bbox_mAP', 'coco/segm_mAP'):
        assert -1 <= metric(proc.stdout, key) <= 1

    content = torch.load(det_file, weights_only=True)
    content['meta']['CLASSES'] = ('disc', 'box', 'wedge')
    torch.save(content, det_file)
    out = tmp_path / 'infer'
    proc = run(sys.executable, TOOLS / 'infer.py', DET_CONFIG, det_file,
               tmp_path / 'coco' / 'val' / '000001.png', '--out-dir', out,
               '--score-thr', '0')
    log = proc.stdout + proc.stderr
    assert re.search(r'000001\.png: \d+ objects scoring >= 0\.0: '
                     r'(disc|box|wedge) ', log), log[-2000:]

    seg_file = tmp_path / 'fpn_published.pth'
    published.whole_model(SEG_CONFIG, 'ti', seg_file, 'mmseg')
    proc = run(sys.executable, TOOLS / 'test.py', SEG_CONFIG, seg_file,
               '--work-dir', tmp_path / 'test_seg', '--cfg-options',
               *seg_data(tmp_path / 'ade'))
    assert 0 <= metric(proc.stdout, 'mIoU') <= 100
    assert 'Iter(test) [4/4]' in proc.stdout


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
