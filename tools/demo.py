"""`make demo`: MobileViGv2-Ti learns detection, segmentation and
classification on CPU, from scratch, on small synthetic datasets.

    python tools/demo.py                      # all three tasks
    python tools/demo.py --tasks det          # only Mask R-CNN

For each task: generate the dataset (once, under data/demo/), evaluate the
untrained model, train with the config in configs/<task>/demo/ (a progress
bar with the ETA every 15 s), evaluate again with the task library's own
metric (mmdet CocoMetric, mmseg IoUMetric, mmpretrain Accuracy), save a few
prediction pictures, and print a table with the numbers before and after
training beside the target, the time of each task and the total.

The schedules are iterations, sized so that all three tasks take under 10
minutes on 2 cores even at half the speed measured (README: the demo). A
mistake of the user's ends the demo with one line (``--debug``: its
traceback too).
"""
import argparse
import os
import os.path as osp
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

START = time.time()  # the total time counts the heavy imports below too

import numpy as np  # noqa: E402
from mmengine.hooks import Hook  # noqa: E402

from mvig2_mm.cli.tool import add_debug_argument, tool_main  # noqa: E402

PROG = 'tools/demo.py'
REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _make_coco(root: str) -> None:
    from mvig2_mm.testing.synthetic_coco import generate
    generate(root, num_train=400, num_val=80, image_size=(128, 128),
             min_size=18, max_size=48)


def _make_ade(root: str) -> None:
    from mvig2_mm.testing.synthetic_ade20k import generate
    generate(root, num_train=300, num_val=60, image_size=(128, 128))


def _make_imagenet(root: str) -> None:
    from mvig2_mm.testing.synthetic_imagenet import generate
    generate(root, num_classes=8, train_per_class=60, val_per_class=20,
             size=64)


@dataclass
class DemoTask:
    name: str
    config: str
    data_root: str
    make_data: Callable[[str], None]
    metrics: List[Tuple[str, str, float]]  # (key, label, scale for display)
    target: Tuple[str, float]  # (key, minimum) on the displayed scale


TASKS = {
    'det': DemoTask(
        'detection (Mask R-CNN)',
        'configs/detection/demo/maskrcnn_mvig2_ti_shapes.py',
        'data/demo/shapes_coco_128', _make_coco,
        [('coco/bbox_mAP_50', 'AP^box@0.5', 1), ('coco/bbox_mAP', 'AP^box', 1),
         ('coco/segm_mAP_50', 'AP^mask@0.5', 1),
         ('coco/segm_mAP', 'AP^mask', 1)],
        ('coco/bbox_mAP_50', 0.5)),
    'seg': DemoTask(
        'segmentation (Semantic FPN)',
        'configs/segmentation/demo/semfpn_mvig2_ti_shapes.py',
        'data/demo/shapes_ade', _make_ade,
        [('mIoU', 'mIoU (%)', 1), ('aAcc', 'pixel acc. (%)', 1)],
        ('mIoU', 50.)),
    'cls': DemoTask(
        'classification (8 classes)',
        'configs/classification/demo/mvig2_ti_shapes.py',
        'data/demo/shapes_in1k', _make_imagenet,
        [('accuracy/top1', 'top-1 (%)', 1)],
        ('accuracy/top1', 90.)),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG,
                                     description=__doc__.split('\n\n')[0])
    parser.add_argument('--tasks', nargs='+', choices=sorted(TASKS),
                        default=['det', 'seg', 'cls'])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--max-iters', type=int,
                        help='shorten training (a quick check, not the demo)')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def _save_pictures(runner, out_dir: str, count: int = 4) -> List[str]:
    """Draw the trained model's predictions on the first val images."""
    import mmcv
    import torch
    os.makedirs(out_dir, exist_ok=True)
    loader = runner.val_dataloader
    dataset = loader.dataset
    runner.visualizer.dataset_meta = dataset.metainfo
    runner.model.eval()
    paths = []
    for i in range(min(count, len(dataset))):
        batch = loader.collate_fn([dataset[i]])
        with torch.no_grad():
            sample = runner.model.test_step(batch)[0]
        img_path = sample.get('img_path')
        image = mmcv.imread(img_path, channel_order='rgb')
        path = osp.join(out_dir, osp.basename(img_path).rsplit('.', 1)[0]
                        + '.png')
        visualizer = runner.visualizer
        if hasattr(visualizer, 'visualize_cls'):  # mmpretrain's visualizer
            visualizer.visualize_cls(image, sample, draw_gt=False,
                                     rescale_factor=3., out_file=path)
        else:
            visualizer.add_datasample(osp.basename(img_path), image,
                                      data_sample=sample, draw_gt=False,
                                      out_file=path)
        paths.append(path)
    return paths


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f'{minutes}:{seconds:02d}'


class _Progress(Hook):
    """A progress bar with the ETA of the task's training, one line every
    ``every`` seconds (and at the end), beside mmengine's own log lines."""
    priority = 'VERY_LOW'

    def __init__(self, name: str, every: float = 15.) -> None:
        self.name, self.every = name, every
        self.start = self.last = 0.

    def before_train(self, runner) -> None:
        self.start = self.last = time.time()

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        now, done, total = time.time(), runner.iter + 1, runner.max_iters
        if now - self.last < self.every and done < total:
            return
        self.last = now
        elapsed = now - self.start
        eta = elapsed / done * (total - done)
        filled = int(24 * done / total)
        loss = (outputs or {}).get('loss')
        loss = f' loss {float(loss):.3f}' if loss is not None else ''
        print(f'[demo] {self.name} [{"#" * filled}{"." * (24 - filled)}] '
              f'{done}/{total} iters{loss}, {_clock(elapsed)} elapsed, '
              f'ETA {_clock(eta)}', flush=True)


class _LastMetrics(Hook):
    """Keeps the metrics of the latest validation."""
    priority = 'LOWEST'

    def __init__(self) -> None:
        self.metrics: Dict[str, float] = {}

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = dict(metrics or {})


def run_task(key: str, task: DemoTask, work_dir: str,
             max_iters: Optional[int]) -> Dict:
    from mmengine.config import Config
    from mmengine.runner import Runner

    task_start = time.time()
    if not osp.isdir(task.data_root):
        print(f'[demo] generating {task.data_root}', flush=True)
        task.make_data(task.data_root)
    cfg = Config.fromfile(task.config)
    cfg.work_dir = osp.join(work_dir, key)
    cfg.default_hooks.checkpoint.interval = 10 ** 9  # only the final one
    # 'save_best' cannot run on the validation before training starts
    cfg.default_hooks.checkpoint.pop('save_best', None)
    if max_iters is not None:
        if cfg.train_cfg.get('by_epoch', cfg.train_cfg.get('type') ==
                             'EpochBasedTrainLoop'):
            cfg.train_cfg.max_epochs = 1
        else:
            cfg.train_cfg.max_iters = max_iters
            cfg.train_cfg.val_interval = max_iters
    runner = Runner.from_cfg(cfg)

    print(f'[demo] {task.name}: evaluating the untrained model', flush=True)
    runner.model.init_weights()  # the weights training starts from
    before = runner.val()
    print(f'[demo] {task.name}: training ({task.config})', flush=True)
    train_start = time.time()
    last = _LastMetrics()
    runner.register_hook(last)
    runner.register_hook(_Progress(key))
    runner.train()  # validates once, at the end of its schedule
    train_s = time.time() - train_start
    pictures = _save_pictures(runner, osp.join(cfg.work_dir, 'predictions'))
    return dict(before=before, after=last.metrics, train_s=train_s,
                task_s=time.time() - task_start, pictures=pictures)


def report(results: Dict[str, Dict]) -> bool:
    """Print the table; whether every task reached its target."""
    lines = ['', '| task | metric | untrained | trained | target |',
             '|---|---|---|---|---|']
    all_met = True
    for key, res in results.items():
        task = TASKS[key]
        for metric, label, scale in task.metrics:
            target = ''
            if metric == task.target[0]:
                met = res['after'][metric] * scale >= task.target[1]
                all_met &= met
                verdict = 'met' if met else 'NOT met'
                target = f'>= {task.target[1]:g} ({verdict})'
            lines.append(f'| {task.name} | {label} | '
                         f'{res["before"][metric] * scale:.3f} | '
                         f'{res["after"][metric] * scale:.3f} | {target} |')
        lines.append(f'| {task.name} | time (min:s): training / whole task '
                     f'| | {_clock(res["train_s"])} / '
                     f'{_clock(res["task_s"])} | |')
    print('\n'.join(lines))
    for key, res in results.items():
        print(f'[demo] {TASKS[key].name}: predictions in '
              f'{osp.dirname(res["pictures"][0])}/')
    return all_met


@tool_main(PROG)
def main(argv=None) -> int:
    """Run the demo with the command line ``argv`` (default:
    ``sys.argv[1:]``)."""
    args = parse_args(argv)
    os.chdir(REPO)
    results = {}
    for key in args.tasks:
        results[key] = run_task(key, TASKS[key], args.work_dir, args.max_iters)
    met = report(results)
    print(f'[demo] {"all targets met" if met else "some targets NOT met"}')
    print(f'[demo] total time {_clock(time.time() - START)} (min:s) for '
          f'{len(results)} task(s), imports and data included; the budget '
          f'is 10:00 on 2 cores at half the speed measured (README)',
          flush=True)
    return 0


if __name__ == '__main__':
    np.set_printoptions(precision=3)
    sys.exit(main())
