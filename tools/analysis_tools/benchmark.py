"""Speed and memory of MobileViGv2 beside mmpretrain/mmdet models (markdown).

    python tools/analysis_tools/benchmark.py                   # all tables
    python tools/analysis_tools/benchmark.py --tables 1 2 --repeats 20
    python tools/analysis_tools/benchmark.py --device cuda --amp \
        --channels-last
    python tools/analysis_tools/benchmark.py --quick           # a smoke run

Tables, all measured in one run:

1. Classifiers (backbone + head) at 224x224: params, MACs, latency at batch 1
   and throughput at batch 16 of MobileViGv2 ti/s/m/b in the training form
   (eval mode) and the deploy form (``switch_to_deploy()``), its
   predecessor MobileViG ti/s/m/b in both forms (``--families``), beside
   mmpretrain's EfficientFormer-L1, MobileNetV2, MobileOne-S1 (and its deploy
   form), PoolFormer-S12 and ResNet-50 (random weights: speed does not depend
   on them).
2. Achieved GFLOP/s (2 x MACs / time) of the same runs, against this
   machine's dense fp32 matmul GFLOP/s as the ceiling.
3. Mask R-CNN with MobileViGv2-M (``configs/detection/maskrcnn_mvig2_m.py``)
   beside mmdet's ResNet-50 Mask R-CNN: predict time at 800x1333, batch 1,
   and training step time (batch 2). The weights are random, so the score
   threshold is set to 0: each image keeps ``max_per_img`` (100) boxes and
   masks, the most a trained detector keeps; the heads' share of the predict
   time is then large, so the time of backbone + FPN alone is shown too.
4. Backbone training step time and peak memory without and with
   ``with_cp`` (gradient checkpointing), batch 16 at 224x224.
5. The backbone's BatchNorm trained (the default detection and segmentation
   configs, as the reference ran) or frozen with Tune mode (the
   ``*_frozen-bn.py`` configs: ``norm_eval=True`` and the backbone's
   ``efficient_conv_bn_eval=True``), and frozen without Tune mode: training
   step time and peak memory, for the backbones (drop path 0.1, batch 16 at
   224x224) and for Mask R-CNN with MobileViGv2-M (batch 2; 800x1333 on
   CUDA, 512x512 on CPU).
6. ONNX Runtime (CPU) beside PyTorch, both on the deploy form: the
   classifiers at 224x224 (batch 1 and 16) and Semantic FPN with
   MobileViGv2-M at 512x512 (batch 1), exported by ``pytorch2onnx.py``'s
   code with dynamic sizes and timed interleaved with PyTorch.

Method: ``--warmup`` untimed runs, then ``--repeats`` timed runs; the median is
reported. The training and deploy forms of a classifier are timed interleaved
(one run of each in turn), so that load from elsewhere on a shared machine
slows both alike. Inference runs under ``torch.inference_mode()``. A training
step is forward, loss (the mean of the outputs for a backbone, the detector's
losses for Mask R-CNN), backward and an AdamW update. MACs are counted by
mmengine's ``FlopAnalyzer`` as ``get_flops.py`` does (convolutions, matmuls,
norms; not the elementwise graph ops). Peak memory is that of the tensors alive
during one training step above those alive before it (parameters, optimizer
state, input), gradients included: on CUDA from
``torch.cuda.max_memory_allocated``, on CPU from the allocation and free events
of PyTorch's CPU allocator recorded by ``torch.profiler``
(``profile_memory=True``), replayed in time order. It leaves out memory that
does not go through PyTorch's allocator (oneDNN scratch space, Python objects)
and the allocator's own slack, so it is below the process's RSS.
"""
import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from typing import Callable, List, Optional, Tuple

import torch
import torch.nn as nn

from mvig2_mm.cli.export import count
from mvig2_mm.models import MobileViGv2
from mvig2_mm.models.backbones import BACKBONES

ARCHS = tuple(MobileViGv2.arch_settings)
FAMILIES = tuple(BACKBONES)
ARCH_NAMES = dict(ti='Ti', s='S', m='M', b='B')
# (name in the table, mmpretrain model name, has a deploy form)
BASELINES = (
    ('EfficientFormer-L1', 'efficientformer-l1_3rdparty_8xb128_in1k', False),
    ('MobileNetV2', 'mobilenet-v2_8xb32_in1k', False),
    ('MobileOne-S1', 'mobileone-s1_8xb32_in1k', True),
    ('PoolFormer-S12', 'poolformer-s12_3rdparty_32xb128_in1k', False),
    ('ResNet-50', 'resnet50_8xb32_in1k', False),
)
DET_CONFIGS = (
    ('Mask R-CNN MobileViGv2-M', 'configs/detection/maskrcnn_mvig2_m.py'),
    ('Mask R-CNN ResNet-50', 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'),
)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[2:]))
    parser.add_argument('--tables', type=int, nargs='+',
                        default=[1, 2, 3, 4, 5, 6],
                        choices=[1, 2, 3, 4, 5, 6], help='tables to measure')
    parser.add_argument('--archs', nargs='+', choices=ARCHS,
                        default=list(ARCHS), help='variants')
    parser.add_argument('--families', nargs='+', choices=FAMILIES,
                        default=list(FAMILIES),
                        help='table 1/2: MobileViGv2 and its predecessor '
                        'MobileViG')
    parser.add_argument('--repeats', type=int, default=10,
                        help='timed runs per measurement (median reported); '
                        'training steps use a half (backbone) or a third '
                        '(detector) of it, after one warm-up step')
    parser.add_argument('--warmup', type=int, default=3,
                        help='untimed runs before timing')
    parser.add_argument('--threads', type=int, default=2,
                        help='torch CPU threads')
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--amp', action='store_true',
                        help='CUDA: float16 autocast (training steps without '
                        'loss scaling: timing only)')
    parser.add_argument('--channels-last', action='store_true',
                        help='models and inputs in channels-last memory '
                        'format')
    parser.add_argument('--no-baselines', action='store_true',
                        help='table 1/2 without the mmpretrain models')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: ti only, tiny inputs, one repeat')
    args = parser.parse_args(argv)
    if args.amp and args.device != 'cuda':
        parser.error('--amp needs --device cuda')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        parser.error('--repeats and --threads must be >= 1, --warmup >= 0')
    args.size, args.batch = 224, 16
    args.det_size, args.det_batch = (800, 1333), 2
    # Tune mode's Mask R-CNN step: the real size where it is quick enough
    args.tune_det_size = (800, 1333) if args.device == 'cuda' else (512, 512)
    args.seg_size = (512, 512)
    if args.quick:
        args.archs, args.repeats, args.warmup = ['ti'], 1, 1
        args.size, args.batch = 64, 2
        args.det_size, args.det_batch = (128, 128), 1
        args.tune_det_size = (128, 128)
        args.seg_size = (64, 64)
    return args


# ---------------------------------------------------------------- timing
class Bench:
    """Device, precision and timing settings shared by all measurements."""

    def __init__(self, args) -> None:
        self.device = torch.device(args.device)
        self.amp = args.amp
        self.channels_last = args.channels_last
        self.repeats, self.warmup = args.repeats, args.warmup

    def sync(self) -> None:
        if self.device.type == 'cuda':
            torch.cuda.synchronize()

    def autocast(self):
        if not self.amp:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.float16)

    def prepare(self, model: nn.Module) -> nn.Module:
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def input(self, batch: int, shape: Tuple[int, int]) -> torch.Tensor:
        x = torch.randn(batch, 3, *shape, device=self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def time(self, fn: Callable[[], object], repeats: Optional[int] = None,
             warmup: Optional[int] = None) -> float:
        """Median seconds of ``fn()`` after the warm-up runs."""
        return self.time_interleaved([fn], repeats, warmup)[0]

    def time_interleaved(self, fns: List[Callable[[], object]],
                         repeats: Optional[int] = None,
                         warmup: Optional[int] = None) -> List[float]:
        """Median seconds of each of ``fns``, their timed runs taken in turn
        (one of each, then again), so that a change of load on a shared
        machine slows all of them alike and their ratios hold."""
        for _ in range(self.warmup if warmup is None else warmup):
            for fn in fns:
                fn()
        self.sync()
        times: List[List[float]] = [[] for _ in fns]
        for _ in range(repeats or self.repeats):
            for fn, fn_times in zip(fns, times):
                start = time.perf_counter()
                fn()
                self.sync()
                fn_times.append(time.perf_counter() - start)
        return [statistics.median(t) for t in times]

    def infer(self, models: List[nn.Module], x: torch.Tensor) -> List[float]:
        """Median inference seconds of each model on ``x``, interleaved."""
        def runner(model):
            def run():
                with torch.inference_mode(), self.autocast():
                    model(x)
            return run
        return self.time_interleaved([runner(model) for model in models])

    def train_step(self, model: nn.Module,
                   loss_fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
        """One training step: ``loss_fn()`` forward, backward, AdamW."""
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-6)

        def step():
            with self.autocast():
                loss = loss_fn()
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    def peak_memory(self, step: Callable[[], None]) -> float:
        """Bytes of tensors alive at the peak of ``step()`` above those alive
        before it (see the module docstring)."""
        step()  # optimizer state and allocator warm
        if self.device.type == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            step()
            torch.cuda.synchronize()
            return torch.cuda.max_memory_allocated() - before
        from torch.profiler import ProfilerActivity, profile
        with profile(activities=[ProfilerActivity.CPU],
                     profile_memory=True) as prof:
            step()
        try:  # the raw events, in time order (the averaged ones lose it)
            events = sorted((e for e in prof.profiler.kineto_results.events()
                             if e.name() == '[memory]'),
                            key=lambda e: e.start_ns())
        except AttributeError:  # another torch's profiler internals
            return float('nan')
        alive = peak = 0
        for event in events:
            alive += event.nbytes()  # negative for a free
            peak = max(peak, alive)
        return peak


def matmul_gflops(bench: Bench) -> float:
    """Dense matmul GFLOP/s of this device (float16 with --amp on CUDA)."""
    n = 8192 if bench.device.type == 'cuda' else 2048
    dtype = torch.float16 if bench.amp else torch.float32
    a = torch.randn(n, n, device=bench.device, dtype=dtype)
    b = torch.randn(n, n, device=bench.device, dtype=dtype)
    seconds = bench.time(lambda: torch.mm(a, b), repeats=max(
        bench.repeats, 5))
    return 2 * n**3 / seconds / 1e9


# ---------------------------------------------------------------- models
def mobilevig_classifier(arch: str, family: str) -> nn.Module:
    """The reference ImageNet classifier of a MobileViGv2 / MobileViG
    variant."""
    from mmpretrain.registry import MODELS

    from mvig2_mm.models import imagenet_classifier_cfg
    return MODELS.build(imagenet_classifier_cfg(arch, backbone=family))


def classifiers(args) -> List[Tuple[str, str, Callable[[], nn.Module]]]:
    """(model, form, builder) for tables 1 and 2."""
    from mvig2_mm.models.utils import switch_to_deploy
    rows = []
    for family in args.families:
        for arch in args.archs:
            name = f'{family}-{ARCH_NAMES[arch]}'
            rows.append((name, 'train', lambda a=arch, f=family:
                         mobilevig_classifier(a, f)))
            rows.append((name, 'deploy', lambda a=arch, f=family:
                         switch_to_deploy(mobilevig_classifier(a, f).eval())))
    if args.no_baselines:
        return rows
    from mmpretrain import get_model
    baselines = BASELINES
    if args.quick:
        baselines = [b for b in BASELINES if b[0] == 'MobileOne-S1']
    for name, model_name, has_deploy in baselines:
        rows.append((name, 'train', lambda m=model_name: get_model(
            m, pretrained=False)))
        if has_deploy:
            rows.append((name, 'deploy',
                         lambda m=model_name: switch_to_deploy(
                             get_model(m, pretrained=False).eval())))
    return rows


# ---------------------------------------------------------------- tables
def print_table(title: str, header: List[str], rows: List[List[str]]) -> None:
    print(f'\n### {title}\n')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')
    sys.stdout.flush()


def classifier_tables(args, bench: Bench) -> None:
    shape = (args.size, args.size)
    results = []
    rows = classifiers(args)
    for name in dict.fromkeys(row[0] for row in rows):  # in order
        # the forms of one model are timed interleaved: their ratio holds
        forms = [(form, build().eval()) for row_name, form, build in rows
                 if row_name == name]
        counts = [count(model, shape) for _, model in forms]  # on CPU
        models = [bench.prepare(model) for _, model in forms]
        latencies = bench.infer(models, bench.input(1, shape))
        batch_times = bench.infer(models, bench.input(args.batch, shape))
        for (form, _), (params, macs), latency, batch_time in zip(
                forms, counts, latencies, batch_times):
            results.append((name, form, params, macs, latency, batch_time))
        del forms, models
    size = f'{shape[0]}x{shape[1]}'
    if 1 in args.tables:
        print_table(
            f'1. Classifiers at {size}: latency (batch 1) and throughput '
            f'(batch {args.batch})',
            ['model', 'form', 'params (M)', 'MACs (G)', 'latency (ms)',
             'throughput (img/s)', 'deploy speed-up (batch 1 / '
             f'{args.batch})'],
            [[name, form, f'{params / 1e6:.2f}', f'{macs / 1e9:.2f}',
              f'{latency * 1e3:.1f}', f'{args.batch / batch_time:.1f}',
              _speedup(results, name, form)]
             for name, form, params, macs, latency, batch_time in results])
    if 2 in args.tables:
        ceiling = matmul_gflops(bench)
        rows = []
        for name, form, _, macs, latency, batch_time in results:
            at_1 = 2 * macs / latency / 1e9
            at_b = 2 * macs * args.batch / batch_time / 1e9
            rows.append([name, form, f'{at_1:.1f}', f'{at_b:.1f}',
                         f'{100 * at_1 / ceiling:.0f}%',
                         f'{100 * at_b / ceiling:.0f}%'])
        kind = 'float16' if bench.amp else 'float32'
        print_table(
            f'2. Achieved GFLOP/s (2 x MACs / time); ceiling: dense {kind} '
            f'matmul {ceiling:.0f} GFLOP/s',
            ['model', 'form', 'GFLOP/s batch 1', f'GFLOP/s batch {args.batch}',
             'of ceiling (1)', f'of ceiling ({args.batch})'], rows)


def _speedup(results, name: str, form: str) -> str:
    if form != 'deploy':
        return ''
    train = [r for r in results if r[0] == name and r[1] == 'train']
    if not train:
        return ''
    _, _, _, _, latency, batch_time = train[0]
    mine = [r for r in results if r[0] == name and r[1] == form][0]
    return f'{latency / mine[4]:.2f}x / {batch_time / mine[5]:.2f}x'


def build_detector(config: str, quick: bool = False,
                   backbone: Optional[dict] = None) -> nn.Module:
    from mmdet.registry import MODELS
    from mmengine.config import Config
    from mmengine.hub import get_config
    from mmengine.registry import init_default_scope
    if config.startswith('mmdet::'):
        cfg = get_config(config)
    else:
        cfg = Config.fromfile(os.path.join(REPO, config))
    init_default_scope('mmdet')
    cfg.model.backbone.init_cfg = None  # no checkpoint: random weights
    cfg.model.backbone.update(backbone or {})
    cfg.model.test_cfg.rcnn.score_thr = 0.  # keep max_per_img boxes
    if quick:  # few proposals and boxes: the heads run in a blink
        cfg.model.test_cfg.rpn.max_per_img = 20
        cfg.model.test_cfg.rcnn.max_per_img = 5
        cfg.model.train_cfg.rpn_proposal.max_per_img = 20
        cfg.model.train_cfg.rcnn.sampler.num = 16
    return MODELS.build(cfg.model)


def detection_table(args, bench: Bench) -> None:
    from mmdet.testing import demo_mm_inputs
    height, width = args.det_size
    rows = []
    for name, config in DET_CONFIGS:
        forms = [('train', False)]
        if 'MobileViGv2' in name:
            forms.append(('deploy backbone', True))
        for form, deployed in forms:
            model = bench.prepare(build_detector(config, args.quick))
            if deployed:
                model.backbone.eval()
                model.backbone.switch_to_deploy()
            torch.manual_seed(0)
            packed = demo_mm_inputs(1, [(3, height, width)], with_mask=True,
                                    num_classes=80)
            model.eval()
            data = model.data_preprocessor(packed, False)

            def predict(model=model, data=data):
                with torch.inference_mode(), bench.autocast():
                    model(**data, mode='predict')

            def features(model=model, data=data):
                with torch.inference_mode(), bench.autocast():
                    model.extract_feat(data['inputs'])
            predict_time = bench.time(predict)
            feature_time = bench.time(features)
            train_time = None
            if not deployed:
                packed = demo_mm_inputs(
                    args.det_batch, [(3, height, width)] * args.det_batch,
                    num_items=[5] * args.det_batch, with_mask=True,
                    num_classes=80)
                model.train()
                data = model.data_preprocessor(packed, True)

                def loss(model=model, data=data):
                    losses = model(**data, mode='loss')
                    return model.parse_losses(losses)[0]
                train_time = bench.time(bench.train_step(model, loss),
                                        repeats=max(1, args.repeats // 3),
                                        warmup=min(1, args.warmup))
            rows.append([name, form, f'{predict_time * 1e3:.0f}',
                         f'{feature_time * 1e3:.0f}',
                         '' if train_time is None
                         else f'{train_time * 1e3:.0f}'])
            del model
    print_table(
        f'3. Mask R-CNN: predict at {height}x{width} (batch 1) and training '
        f'step (batch {args.det_batch})',
        ['model', 'backbone form', 'predict (ms)', 'of which backbone + FPN',
         f'training step (ms, batch {args.det_batch})'], rows)


def checkpoint_table(args, bench: Bench) -> None:
    from mvig2_mm.models import MobileViGv2
    shape = (args.size, args.size)
    rows = []
    for arch in args.archs:
        base = None
        for with_cp in (False, True):
            model = bench.prepare(MobileViGv2(arch, with_cp=with_cp).train())
            x = bench.input(args.batch, shape)

            def loss(model=model, x=x):
                return sum(out.float().mean() for out in model(x))
            step = bench.train_step(model, loss)
            seconds = bench.time(step, repeats=max(1, args.repeats // 2),
                                 warmup=min(1, args.warmup))
            peak = bench.peak_memory(step)
            change = '' if base is None else f'{100 * (peak / base - 1):+.0f}%'
            base = base or peak
            rows.append([f'MobileViGv2-{ARCH_NAMES[arch]}', str(with_cp),
                         f'{seconds * 1e3:.0f}', f'{peak / 2**20:.0f}',
                         change])
            del model
    print_table(
        f'4. Backbone training step (batch {args.batch}, '
        f'{shape[0]}x{shape[1]}): time and peak tensor memory',
        ['backbone', 'with_cp', 'step (ms)', 'peak memory (MiB)',
         'memory vs without'], rows)


def bn_recipe_table(args, bench: Bench) -> None:
    """Training steps of the two BatchNorm recipes: trained (the default
    configs, as the reference ran) and frozen with Tune mode (the
    ``*_frozen-bn.py`` configs), with frozen BN without Tune mode between
    them for Tune mode's own share."""
    from mmdet.testing import demo_mm_inputs
    recipes = (('trained', {}), ('frozen', dict(norm_eval=True)),
               ('frozen + Tune mode', dict(norm_eval=True,
                                           efficient_conv_bn_eval=True)))
    shape = (args.size, args.size)
    cases = []  # (name, input, builder(backbone options) -> (model, loss))
    for arch in args.archs:
        def backbone(options, arch=arch):
            model = bench.prepare(MobileViGv2(arch, drop_path_rate=0.1,
                                              **options))
            x = bench.input(args.batch, shape)
            return model, lambda: sum(out.float().mean() for out in model(x))
        cases.append((f'MobileViGv2-{ARCH_NAMES[arch]}',
                      f'{args.batch} x {shape[0]}x{shape[1]}', backbone))

    height, width = args.tune_det_size

    def mask_rcnn(options):
        model = bench.prepare(build_detector(DET_CONFIGS[0][1], args.quick,
                                             options))
        torch.manual_seed(0)
        packed = demo_mm_inputs(
            args.det_batch, [(3, height, width)] * args.det_batch,
            num_items=[5] * args.det_batch, with_mask=True, num_classes=80)
        data = model.data_preprocessor(packed, True)
        return model, lambda: model.parse_losses(
            model(**data, mode='loss'))[0]
    cases.append((DET_CONFIGS[0][0], f'{args.det_batch} x {height}x{width}',
                  mask_rcnn))

    rows = []
    for name, size, build in cases:
        base = None
        for recipe, options in recipes:
            model, loss = build(options)
            model.train()
            step = bench.train_step(model, loss)
            seconds = bench.time(step, repeats=max(1, args.repeats // 2),
                                 warmup=min(1, args.warmup))
            peak = bench.peak_memory(step)
            change = '' if base is None else (
                f'{100 * (peak / base[0] - 1):+.0f}% / '
                f'{100 * (seconds / base[1] - 1):+.0f}%')
            base = base or (peak, seconds)
            rows.append([name, size, recipe, f'{seconds * 1e3:.0f}',
                         f'{peak / 2**20:.0f}', change])
            del model, step
    print_table(
        '5. Backbone BatchNorm trained (default configs) or frozen with '
        'Tune mode (*_frozen-bn.py): training step time and peak tensor '
        'memory',
        ['model', 'batch x input', 'backbone BatchNorm', 'step (ms)',
         'peak memory (MiB)', 'memory / time vs trained'], rows)


SEG_CONFIG = ('Semantic FPN MobileViGv2-M',
              'configs/segmentation/semfpn_mvig2_m.py')


def onnxruntime_table(args, bench: Bench) -> None:
    """The deploy form in PyTorch and in onnxruntime, interleaved (CPU)."""
    if args.device != 'cpu':
        print('\n(table 6 compares CPU runtimes: run it with --device cpu)')
        return
    try:
        import onnxruntime as ort
    except ImportError:
        print('\n(table 6 needs onnxruntime: pip install -e .[deploy])')
        return
    from mvig2_mm.cli.export import build_export_model, export
    shape = (args.size, args.size)
    cases = [(f'MobileViGv2-{ARCH_NAMES[arch]}',
              lambda arch=arch: build_export_model(arch=arch), shape,
              [1, args.batch]) for arch in args.archs]
    cases.append((SEG_CONFIG[0], lambda: build_export_model(
        os.path.join(REPO, SEG_CONFIG[1])), args.seg_size, [1]))
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    # idle threads that spin would slow the PyTorch runs timed in between
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, build, size, batches in cases:
            model = build()
            path = os.path.join(tmp, 'model.onnx')
            export(model, size, path, dynamic=True)
            session = ort.InferenceSession(
                path, options, providers=['CPUExecutionProvider'])
            for batch in batches:
                x = torch.randn(batch, 3, *size)
                feed = {'input': x.numpy()}

                def in_torch(model=model, x=x):
                    with torch.inference_mode():
                        model(x)

                def in_onnxruntime(session=session, feed=feed):
                    session.run(None, feed)
                seconds = bench.time_interleaved([in_torch, in_onnxruntime])
                rows.append([name, f'{batch} x {size[0]}x{size[1]}',
                             f'{seconds[0] * 1e3:.1f}',
                             f'{seconds[1] * 1e3:.1f}',
                             f'{seconds[0] / seconds[1]:.2f}x'])
            del model, session
    print_table(
        f'6. ONNX Runtime {ort.__version__} (CPU) beside PyTorch, deploy '
        f'form', ['model', 'batch x input', 'PyTorch (ms)',
                  'onnxruntime (ms)', 'onnxruntime speed-up'], rows)


class OtherLoad:
    """Share of the machine's CPU time that other processes used between
    creation and :meth:`share` (Linux ``/proc/stat``; None elsewhere)."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> Optional[Tuple[float, float, float]]:
        try:
            with open('/proc/stat') as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf('SC_CLK_TCK')
        own = os.times()
        return busy, own.user + own.system, time.monotonic()

    def share(self) -> Optional[float]:
        end = self._sample()
        if self.start is None or end is None:
            return None
        busy, own, wall = (b - a for a, b in zip(self.start, end))
        return max(0., busy - own) / (wall * (os.cpu_count() or 1))


def machine(args) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    text = (f'{datetime.date.today()}, {cpu} ({os.cpu_count()} logical CPUs), '
            f'torch {torch.__version__}, {args.threads} threads')
    if args.device == 'cuda':
        text += f', {torch.cuda.get_device_name()}'
    extras = [flag for flag, on in (('AMP float16', args.amp),
                                    ('channels-last', args.channels_last))
              if on]
    load = os.getloadavg()[0] if hasattr(os, 'getloadavg') else None
    return (text + (f' ({", ".join(extras)})' if extras else '')
            + ('' if load is None else f'; load average {load:.2f} at start')
            + f'; median of {args.repeats} runs after {args.warmup} warm-up')


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    import mvig2_mm  # noqa: F401
    bench = Bench(args)
    other = OtherLoad()
    print(f'Machine: {machine(args)}')
    if args.quick:
        print('(--quick: a smoke run on tiny inputs; its numbers mean '
              'nothing)')
    if {1, 2} & set(args.tables):
        classifier_tables(args, bench)
    if 3 in args.tables:
        detection_table(args, bench)
    if 4 in args.tables:
        checkpoint_table(args, bench)
    if 5 in args.tables:
        bn_recipe_table(args, bench)
    if 6 in args.tables:
        onnxruntime_table(args, bench)
    share = other.share()
    if share is not None:
        print(f'\nOther processes used {100 * share:.0f}% of the CPUs during '
              f'the run' + (' (the numbers are disturbed)' if share > 0.05
                            else '') + '.')
    return 0


if __name__ == '__main__':
    sys.exit(main())
