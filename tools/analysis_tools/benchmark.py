"""Speed and memory of the MobileViG backbones beside mmpretrain/mmdet models
and the reference implementation (markdown tables).

    python tools/analysis_tools/benchmark.py                   # all tables
    python tools/analysis_tools/benchmark.py --tables 1 --compile \
        --reference PATH/TO/SLDGroup/MobileViGv2
    python tools/analysis_tools/benchmark.py --device cuda --amp
    python tools/analysis_tools/benchmark.py --quick           # a smoke run

Tables, all measured in one run:

1. Classifiers (backbone + head) at 224x224: params, MACs, latency at batch 1
   and throughput at batch 16 of MobileViGv2 and MobileViG (``--families``)
   in the training form (eval mode), the deploy form (``switch_to_deploy()``)
   and, with ``--compile``, the deploy form compiled by ``torch.compile``
   (with the compile time: the first call at each batch size); with
   ``--reference DIR`` also the authors' implementation (``models/`` of a
   checkout of github.com/SLDGroup/MobileViGv2, which needs timm), beside
   mmpretrain's EfficientFormer-L1, MobileNetV2, MobileOne-S1 (and its deploy
   form), PoolFormer-S12 and ResNet-50 (random weights: speed does not depend
   on them).
2. Achieved GFLOP/s (2 x MACs / time) of the same runs, against this
   machine's dense matmul GFLOP/s as the ceiling.
3. Mask R-CNN with MobileViGv2-M (``configs/detection/maskrcnn_mvig2_m.py``)
   beside mmdet's ResNet-50 Mask R-CNN: predict time at 800x1333, batch 1
   (score threshold 0: each image keeps ``max_per_img`` boxes and masks, as a
   trained detector at most does), of which backbone + FPN, and the training
   step time (batch 2).
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
   MobileViGv2-M at 512x512 (batch 1), exported with dynamic sizes.
7. Every runtime, float and 8-bit (``--tables 7``: it converts the
   classifiers to each, minutes): PyTorch eager and compiled, PT2E x86 8-bit
   compiled, ONNX Runtime, OpenVINO f32 / bf16 / 8-bit (NNCF), ExecuTorch
   XNNPACK float / 8-bit (``--runtimes``), the deploy-form classifiers of
   ``--archs`` at 224x224, batch 1 and 16, timed interleaved; file sizes,
   build times, logits SNR against eager float (the weights of
   ``--checkpoints``, e.g. published files; random otherwise) and, with
   ``--classifier CONFIG CHECKPOINT`` / ``--segmentor CONFIG CHECKPOINT``, a
   trained classifier's top-1 / segmentor's mIoU on its validation images
   in each runtime.

Method: every run is one ``torch.utils.benchmark.Timer`` measurement, after
``--warmup`` untimed runs; the median of ``--repeats`` runs is reported. The
forms of one model (and the reference implementation of it) are timed
interleaved, one run of each in turn, so that load from elsewhere on a
shared machine slows them alike and their ratios hold. Inference runs under
``torch.inference_mode()``. A training step is forward, loss (the mean of the
outputs for a backbone, the detector's losses for Mask R-CNN), backward and
an AdamW update. MACs are counted by mmengine's ``FlopAnalyzer`` as
``get_flops.py`` does (convolutions, matmuls, norms; not the elementwise
graph ops). Peak memory is that of the tensors alive during one training
step above those alive before it, gradients included: on CUDA
``torch.cuda.max_memory_allocated``, on CPU the allocations and frees that
``torch.profiler`` records (``profile_memory=True``) in time order. It leaves
out memory that does not go through PyTorch's allocator (oneDNN scratch
space, Python objects), so it is below the process's RSS.
"""
import argparse
import datetime
import importlib.util
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from torch.utils.benchmark import Timer

from mvig2_mm.deployment.runtimes import RUNTIMES, compile_frozen

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ARCHS = ('ti', 's', 'm', 'b')
FAMILIES = ('MobileViGv2', 'MobileViG', 'GreedyViG')
ARCH_NAMES = dict(ti='Ti', s='S', m='M', b='B')
# the reference's model file and factory name of each family (MobileViG's
# is in MobileViGv2's repository too; GreedyViG's in SLDGroup/GreedyViG)
REFERENCE = dict(MobileViGv2=('models/mobilevigv2.py', 'mobilevigv2_{}'),
                 MobileViG=('models/mobilevig.py', 'mobilevig_{}'),
                 GreedyViG=('models/greedyvig.py', 'GreedyViG_{}'))
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
SEG_CONFIG = ('Semantic FPN MobileViGv2-M',
              'configs/segmentation/semfpn_mvig2_m.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n\n'.join(__doc__.split('\n\n')[2:]))
    parser.add_argument('--tables', type=int, nargs='+',
                        default=[1, 2, 3, 4, 5, 6],
                        choices=[1, 2, 3, 4, 5, 6, 7],
                        help='tables to measure (default: 1-6; 7 converts '
                        'to every runtime, minutes)')
    parser.add_argument('--archs', nargs='+', choices=ARCHS,
                        default=list(ARCHS), help='variants')
    parser.add_argument('--families', nargs='+', choices=FAMILIES,
                        default=list(FAMILIES),
                        help='table 1/2: MobileViGv2, its predecessor '
                        'MobileViG and GreedyViG (variants of --archs that '
                        'a family has)')
    parser.add_argument('--compile', action='store_true',
                        help='table 1/2: also the deploy form compiled by '
                        'torch.compile (inductor, weights frozen, C++ '
                        'wrapper, a static graph per batch size)')
    parser.add_argument('--reference', metavar='DIR', nargs='+', default=[],
                        help='table 1/2: also the reference implementation, '
                        'from checkouts of github.com/SLDGroup/MobileViGv2 '
                        '(MobileViGv2 and MobileViG) and SLDGroup/GreedyViG '
                        '(their models/ import timm, which must be '
                        'importable)')
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
    parser.add_argument('--runtimes', nargs='+', choices=list(RUNTIMES),
                        default=list(RUNTIMES), help='table 7: runtimes')
    parser.add_argument('--calib', type=int, default=8,
                        help='table 7: random inputs the 8-bit runtimes '
                        'are calibrated on (the trained classifier of '
                        '--classifier: images of its training set)')
    parser.add_argument('--checkpoints', nargs='+', default=[],
                        metavar='ARCH=FILE',
                        help='table 7: weights of the classifiers (e.g. '
                        'published files), for the SNR column')
    for model, measure, size in (('classifier', 'top-1', 96),
                                 ('segmentor', 'mIoU', 128)):
        parser.add_argument(f'--{model}', nargs=2,
                            metavar=('CONFIG', 'CHECKPOINT'),
                            help=f'table 7: a trained {model} whose {measure} '
                            f'on its validation images each runtime is '
                            f'measured on')
        parser.add_argument(f'--{model}-size', type=int, default=size,
                            help=f'table 7: input size of --{model}')
    parser.add_argument('--val-images', type=int, default=160,
                        help='table 7: validation images of --classifier '
                        'and --segmentor')
    parser.add_argument('--quick', action='store_true',
                        help='smoke run: ti only, tiny inputs, one repeat')
    args = parser.parse_args(argv)
    if args.amp and args.device != 'cuda':
        parser.error('--amp needs --device cuda')
    if args.device == 'cuda' and not torch.cuda.is_available():
        parser.error('--device cuda: no CUDA device is available')
    if args.repeats < 1 or args.warmup < 0 or args.threads < 1:
        parser.error('--repeats and --threads must be >= 1, --warmup >= 0')
    try:
        args.checkpoints = dict(item.split('=', 1)
                                for item in args.checkpoints)
    except ValueError:
        parser.error('--checkpoints takes ARCH=FILE pairs')
    for directory in args.reference:
        if not any(os.path.isfile(os.path.join(directory, path))
                   for path, _ in REFERENCE.values()):
            parser.error(f'--reference {directory}: no models/'
                         f'{{mobilevigv2,mobilevig,greedyvig}}.py there (a '
                         f'checkout of SLDGroup/MobileViGv2 or GreedyViG)')
    args.size, args.batch = 224, 16
    args.det_size, args.det_batch = (800, 1333), 2
    # the BatchNorm recipes' Mask R-CNN step: the real size where it is
    # quick enough
    args.tune_det_size = (800, 1333) if args.device == 'cuda' else (512, 512)
    args.seg_size = (512, 512)
    if args.quick:
        args.archs, args.repeats, args.warmup = ['ti'], 1, 1
        args.size, args.batch = 64, 2
        args.det_size, args.det_batch = (128, 128), 1
        args.tune_det_size = (128, 128)
        args.seg_size = (64, 64)
        args.calib, args.val_images = 2, 8
    return args


# ---------------------------------------------------------------- timing
class Bench:
    """Device, precision and timing settings shared by all measurements."""

    def __init__(self, args) -> None:
        self.device = torch.device(args.device)
        self.amp = args.amp
        self.channels_last = args.channels_last
        self.threads = args.threads
        self.repeats, self.warmup = args.repeats, args.warmup

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

    def time(self, fns: Dict[str, Callable[[], object]],
             repeats: Optional[int] = None,
             warmup: Optional[int] = None) -> Dict[str, float]:
        """Median seconds of each of ``fns``, their runs (one
        ``torch.utils.benchmark`` measurement each, which synchronises CUDA)
        taken in turn: one of each, then again."""
        timers = {name: Timer('fn()', globals=dict(fn=fn),
                              num_threads=self.threads)
                  for name, fn in fns.items()}
        for _ in range(self.warmup if warmup is None else warmup):
            for timer in timers.values():
                timer.timeit(1)
        times: Dict[str, List[float]] = {name: [] for name in fns}
        for _ in range(repeats or self.repeats):
            for name, timer in timers.items():
                times[name].append(timer.timeit(1).median)
        return {name: statistics.median(t) for name, t in times.items()}

    def infer(self, models: Dict[str, nn.Module],
              x: torch.Tensor) -> Dict[str, float]:
        """Median inference seconds of each model on ``x``, interleaved."""
        def runner(model):
            def run():
                with torch.inference_mode(), self.autocast():
                    model(x)
            return run
        return self.time({name: runner(m) for name, m in models.items()})

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
        # the profiler's raw events, in time order: its averaged events
        # attribute memory to operators and lose the order of the frees
        events = sorted((e for e in prof.profiler.kineto_results.events()
                         if e.name() == '[memory]'),
                        key=lambda e: e.start_ns())
        alive = peak = 0
        for event in events:
            alive += event.nbytes()  # negative for a free
            peak = max(peak, alive)
        return peak


def compiled(model: nn.Module, inputs: List[torch.Tensor]
             ) -> Tuple[Callable[[torch.Tensor], object], float]:
    """``torch.compile`` of an inference model (inductor, weights frozen as
    constants: :func:`~mvig2_mm.deployment.runtimes.compile_frozen`), one
    static graph for each input's shape as a fixed-size deployment compiles
    it, and the seconds its first call at each input took: the compile
    time."""
    model = compile_frozen(model, dynamic=False)
    start = time.perf_counter()
    for x in inputs:
        with torch.inference_mode():
            model(x)
    return model, time.perf_counter() - start


def matmul_gflops(bench: Bench) -> float:
    """Dense matmul GFLOP/s of this device (float16 with --amp on CUDA)."""
    n = 8192 if bench.device.type == 'cuda' else 2048
    dtype = torch.float16 if bench.amp else torch.float32
    a = torch.randn(n, n, device=bench.device, dtype=dtype)
    b = torch.randn(n, n, device=bench.device, dtype=dtype)
    seconds = bench.time({'mm': lambda: torch.mm(a, b)},
                         repeats=max(bench.repeats, 5))['mm']
    return 2 * n**3 / seconds / 1e9


# ---------------------------------------------------------------- models
def our_classifier(arch: str, family: str) -> nn.Module:
    """The ImageNet classifier of a MobileViGv2 / MobileViG variant."""
    from mmpretrain.registry import MODELS

    from mvig2_mm.models import imagenet_classifier_cfg
    return MODELS.build(imagenet_classifier_cfg(arch, backbone=family))


_REFERENCE_MODULES: Dict[str, object] = {}


def reference_classifier(directories: List[str], family: str, arch: str
                         ) -> Optional[nn.Module]:
    """The reference implementation's classifier (``models/`` of a checkout
    of the authors' repository), its file imported once; None when no
    directory has it."""
    path, factory = REFERENCE[family]
    if family not in _REFERENCE_MODULES:
        found = [d for d in directories
                 if os.path.isfile(os.path.join(d, path))]
        if not found:
            return None
        spec = importlib.util.spec_from_file_location(
            f'reference_{family.lower()}', os.path.join(found[0], path))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # timm's registry looks it up
        spec.loader.exec_module(module)
        _REFERENCE_MODULES[family] = module
    name = factory.format(arch.upper() if family == 'GreedyViG' else arch)
    return getattr(_REFERENCE_MODULES[family], name)()


def classifier_forms(args, family: str, arch: str
                     ) -> Dict[str, Callable[[], nn.Module]]:
    """Table 1's forms of one of our models: {form: builder}."""
    from mvig2_mm.deployment.models import Logits
    from mvig2_mm.models.utils import switch_to_deploy
    forms = {
        'train': lambda: Logits(our_classifier(arch, family)),
        'deploy': lambda: Logits(switch_to_deploy(
            our_classifier(arch, family).eval())),
    }
    if any(os.path.isfile(os.path.join(d, REFERENCE[family][0]))
           for d in args.reference):  # image -> logits in eval mode
        forms['reference'] = lambda: reference_classifier(args.reference,
                                                          family, arch)
    return forms


def baseline_forms(args) -> List[Tuple[str, Dict[str, Callable]]]:
    if args.no_baselines:
        return []
    from mmpretrain import get_model

    from mvig2_mm.deployment.models import Logits
    from mvig2_mm.models.utils import switch_to_deploy
    baselines = BASELINES
    if args.quick:
        baselines = [b for b in BASELINES if b[0] == 'MobileOne-S1']
    rows = []
    for name, model_name, has_deploy in baselines:
        forms = {'train': lambda m=model_name: Logits(
            get_model(m, pretrained=False))}
        if has_deploy:
            forms['deploy'] = lambda m=model_name: Logits(switch_to_deploy(
                get_model(m, pretrained=False).eval()))
        rows.append((name, forms))
    return rows


def print_table(title: str, header: List[str], rows: List[List[str]]) -> None:
    print(f'\n### {title}\n')
    print('| ' + ' | '.join(header) + ' |')
    print('|' + '---|' * len(header))
    for row in rows:
        print('| ' + ' | '.join(row) + ' |')
    sys.stdout.flush()


def classifier_tables(args, bench: Bench) -> None:
    from mvig2_mm.deployment.analysis import count
    shape = (args.size, args.size)
    from mvig2_mm.models.backbones import BACKBONES
    cases = [(f'{family}-{ARCH_NAMES[arch]}',
              classifier_forms(args, family, arch))
             for family in args.families for arch in args.archs
             if arch in BACKBONES[family].arch_settings]
    results = []  # (model, form, params, MACs, latency, batch time, compile)
    x1, xb = bench.input(1, shape), bench.input(args.batch, shape)
    for name, builders in cases + baseline_forms(args):
        # the forms of one model are timed interleaved: their ratios hold
        models = {form: build().eval() for form, build in builders.items()}
        counts = {form: count(model, shape) for form, model in models.items()}
        models = {form: bench.prepare(m) for form, m in models.items()}
        compile_time = {}
        if args.compile and 'deploy' in models and name.startswith(
                FAMILIES):
            models['compiled'], compile_time['compiled'] = compiled(
                models['deploy'], [x1, xb])
            counts['compiled'] = counts['deploy']
        latency, batch_time = bench.infer(models, x1), bench.infer(models, xb)
        for form in models:
            results.append((name, form, *counts[form], latency[form],
                            batch_time[form], compile_time.get(form)))
        del models
    size = f'{shape[0]}x{shape[1]}'

    def versus(name: str, form: str, other: str) -> str:
        base = [r for r in results if r[:2] == (name, other)]
        mine = [r for r in results if r[:2] == (name, form)][0]
        if not base or form == other:
            return ''
        return f'{base[0][4] / mine[4]:.2f}x / {base[0][5] / mine[5]:.2f}x'
    if 1 in args.tables:
        print_table(
            f'1. Classifiers at {size}: latency (batch 1) and throughput '
            f'(batch {args.batch})',
            ['model', 'form', 'params (M)', 'MACs (G)', 'latency (ms)',
             'throughput (img/s)', 'compile (s)',
             f'speed vs train form (batch 1 / {args.batch})',
             f'speed vs reference (batch 1 / {args.batch})'],
            [[name, form, f'{params / 1e6:.2f}', f'{macs / 1e9:.2f}',
              f'{latency * 1e3:.1f}', f'{args.batch / batch_time:.1f}',
              '' if seconds is None else f'{seconds:.0f}',
              versus(name, form, 'train'), versus(name, form, 'reference')]
             for name, form, params, macs, latency, batch_time, seconds
             in results])
    if 2 in args.tables:
        ceiling = matmul_gflops(bench)
        rows = []
        for name, form, _, macs, latency, batch_time, _ in results:
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


def detector_inputs(model: nn.Module, batch: int, size: Tuple[int, int],
                    training: bool) -> dict:
    from mmdet.testing import demo_mm_inputs
    torch.manual_seed(0)
    packed = demo_mm_inputs(batch, [(3, *size)] * batch,
                            num_items=[5] * batch, with_mask=True,
                            num_classes=80)
    return model.data_preprocessor(packed, training)


def detector_loss(model: nn.Module, data: dict) -> Callable[[], torch.Tensor]:
    return lambda: model.parse_losses(model(**data, mode='loss'))[0]


def detection_table(args, bench: Bench) -> None:
    rows = []
    for name, config in DET_CONFIGS:
        forms = [('train', False)]
        if 'MobileViGv2' in name:
            forms.append(('deploy backbone', True))
        for form, deployed in forms:
            model = bench.prepare(build_detector(config, args.quick)).eval()
            if deployed:
                model.backbone.switch_to_deploy()
            data = detector_inputs(model, 1, args.det_size, False)

            def predict(model=model, data=data):
                with torch.inference_mode(), bench.autocast():
                    model(**data, mode='predict')

            def features(model=model, data=data):
                with torch.inference_mode(), bench.autocast():
                    model.extract_feat(data['inputs'])
            seconds = bench.time(dict(predict=predict, features=features))
            train_time = ''
            if not deployed:
                model.train()
                step = bench.train_step(model, detector_loss(
                    model, detector_inputs(model, args.det_batch,
                                           args.det_size, True)))
                train_time = '{:.0f}'.format(1e3 * bench.time(
                    dict(step=step), repeats=max(1, args.repeats // 3),
                    warmup=min(1, args.warmup))['step'])
            rows.append([name, form, f'{seconds["predict"] * 1e3:.0f}',
                         f'{seconds["features"] * 1e3:.0f}', train_time])
            del model
    height, width = args.det_size
    print_table(
        f'3. Mask R-CNN: predict at {height}x{width} (batch 1) and training '
        f'step (batch {args.det_batch})',
        ['model', 'backbone form', 'predict (ms)', 'of which backbone + FPN',
         f'training step (ms, batch {args.det_batch})'], rows)


def training_rows(bench: Bench, args, cases) -> List[List[str]]:
    """Step time and peak memory of each variant of each case:
    ``cases`` are ``(name, input, [(variant, build() -> (model, loss))])``;
    the changes are against a case's first variant."""
    rows = []
    for name, size, variants in cases:
        base = None
        for variant, build in variants:
            model, loss = build()
            model.train()
            step = bench.train_step(model, loss)
            seconds = bench.time(dict(step=step),
                                 repeats=max(1, args.repeats // 2),
                                 warmup=min(1, args.warmup))['step']
            peak = bench.peak_memory(step)
            change = '' if base is None else (
                f'{100 * (peak / base[0] - 1):+.0f}% / '
                f'{100 * (seconds / base[1] - 1):+.0f}%')
            base = base or (peak, seconds)
            rows.append([name, size, variant, f'{seconds * 1e3:.0f}',
                         f'{peak / 2**20:.0f}', change])
            del model, step
    return rows


def backbone_case(bench: Bench, args, arch: str, **options):
    from mvig2_mm.models import MobileViGv2

    def build():
        model = bench.prepare(MobileViGv2(arch, **options))
        x = bench.input(args.batch, (args.size, args.size))
        return model, lambda: sum(out.float().mean() for out in model(x))
    return build


def checkpoint_table(args, bench: Bench) -> None:
    size = f'{args.batch} x {args.size}x{args.size}'
    cases = [(f'MobileViGv2-{ARCH_NAMES[arch]}', size,
              [(str(with_cp), backbone_case(bench, args, arch,
                                            with_cp=with_cp))
               for with_cp in (False, True)]) for arch in args.archs]
    print_table(
        f'4. Backbone training step (batch {args.batch}, {args.size}x'
        f'{args.size}): time and peak tensor memory',
        ['backbone', 'batch x input', 'with_cp', 'step (ms)',
         'peak memory (MiB)', 'memory / time vs without'],
        training_rows(bench, args, cases))


def bn_recipe_table(args, bench: Bench) -> None:
    """Training steps of the two BatchNorm recipes: trained (the default
    configs, as the reference ran) and frozen with Tune mode (the
    ``*_frozen-bn.py`` configs), with frozen BN without Tune mode between
    them for Tune mode's own share."""
    recipes = (('trained', {}), ('frozen', dict(norm_eval=True)),
               ('frozen + Tune mode', dict(norm_eval=True,
                                           efficient_conv_bn_eval=True)))
    size = f'{args.batch} x {args.size}x{args.size}'
    cases = [(f'MobileViGv2-{ARCH_NAMES[arch]}', size,
              [(recipe, backbone_case(bench, args, arch, drop_path_rate=0.1,
                                      **options))
               for recipe, options in recipes]) for arch in args.archs]

    def mask_rcnn(options):
        def build():
            model = bench.prepare(build_detector(DET_CONFIGS[0][1],
                                                 args.quick, options))
            return model, detector_loss(model, detector_inputs(
                model, args.det_batch, args.tune_det_size, True))
        return build
    height, width = args.tune_det_size
    cases.append((DET_CONFIGS[0][0], f'{args.det_batch} x {height}x{width}',
                  [(recipe, mask_rcnn(options))
                   for recipe, options in recipes]))
    print_table(
        '5. Backbone BatchNorm trained (default configs) or frozen with '
        'Tune mode (*_frozen-bn.py): training step time and peak tensor '
        'memory',
        ['model', 'batch x input', 'backbone BatchNorm', 'step (ms)',
         'peak memory (MiB)', 'memory / time vs trained'],
        training_rows(bench, args, cases))


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
    from mvig2_mm.deployment.models import build_export_model
    from mvig2_mm.deployment.onnx import export
    from mvig2_mm.deployment.runtimes import onnxruntime_session
    shape = (args.size, args.size)
    cases = [(f'MobileViGv2-{ARCH_NAMES[arch]}',
              lambda arch=arch: build_export_model(arch=arch), shape,
              [1, args.batch]) for arch in args.archs]
    cases.append((SEG_CONFIG[0], lambda: build_export_model(
        os.path.join(REPO, SEG_CONFIG[1])), args.seg_size, [1]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, build, size, batches in cases:
            model = build()
            path = os.path.join(tmp, 'model.onnx')
            export(model, size, path, dynamic=True)
            session = onnxruntime_session(path, args.threads)
            for batch in batches:
                x = torch.randn(batch, 3, *size)
                feed = {'input': x.numpy()}

                def in_torch(model=model, x=x):
                    with torch.inference_mode():
                        model(x)

                def in_onnxruntime(session=session, feed=feed):
                    session.run(None, feed)
                seconds = bench.time(dict(torch=in_torch,
                                          onnxruntime=in_onnxruntime))
                rows.append([name, f'{batch} x {size[0]}x{size[1]}',
                             f'{seconds["torch"] * 1e3:.1f}',
                             f'{seconds["onnxruntime"] * 1e3:.1f}',
                             f'{seconds["torch"] / seconds["onnxruntime"]:.2f}'
                             'x'])
            del model, session
    print_table(
        f'6. ONNX Runtime {ort.__version__} (CPU) beside PyTorch, deploy '
        f'form', ['model', 'batch x input', 'PyTorch (ms)',
                  'onnxruntime (ms)', 'onnxruntime speed-up'], rows)


def runtimes_table(args, bench: Bench) -> None:
    """The deploy-form classifiers in every runtime, interleaved (CPU)."""
    if args.device != 'cpu':
        print('\n(table 7 compares CPU runtimes: run it with --device cpu)')
        return
    from mvig2_mm.deployment import build_export_model, runtimes
    from mvig2_mm.deployment.accuracy import first_output
    from mvig2_mm.deployment.checks import random_inputs, snr_db
    shape = (args.size, args.size)
    missing: Dict[str, str] = {}

    def build(key, model, size, batch, tmp, calibration):
        """The runtime, or None where its package is missing."""
        if key in missing:
            return None
        try:
            return runtimes.deploy(key, model, size, batch,
                                   os.path.join(tmp, key), calibration,
                                   args.threads)
        except ImportError as error:
            missing[key] = error.name or str(error)
            return None

    # (runtime, arch, batch) -> (seconds, its Deployed, logits SNR)
    runs = {}
    for arch in args.archs:
        model = build_export_model(arch=arch,
                                   checkpoint=args.checkpoints.get(arch))
        for batch in (1, args.batch):
            calibration = runtimes.calibration_batches(
                random_inputs([(1, *shape)] * args.calib), batch)
            x = torch.randn(batch, 3, *shape)
            with tempfile.TemporaryDirectory() as tmp:
                built = {key: build(key, model, shape, batch, tmp,
                                    calibration) for key in args.runtimes}
                built = {k: d for k, d in built.items() if d is not None}
                seconds = bench.time({key: (lambda d=d: d.run(x))
                                      for key, d in built.items()})
                expected = model(x).detach().numpy()
                for key, deployed in built.items():
                    snr = snr_db(first_output(deployed.run(x)), expected)
                    runs[key, arch, batch] = (seconds[key], deployed, snr)
    accuracy_header, accuracy_cells = trained_accuracy(args, build)
    for key, package in missing.items():
        print(f'(table 7: {RUNTIMES[key][0]} left out: {package} is not '
              f'installed: pip install -e .[deploy])')
    names = ' / '.join(ARCH_NAMES[arch] for arch in args.archs)
    header = ['runtime', 'bits']
    for arch in args.archs:
        header += [f'{ARCH_NAMES[arch]} latency (ms)',
                   f'{ARCH_NAMES[arch]} throughput (img/s)',
                   f'{ARCH_NAMES[arch]} speed vs eager (batch 1 / '
                   f'{args.batch})']
    header += [f'file (MB, {names})', f'build (s, {names})',
               f'logits SNR vs eager (dB, {names})']
    header += accuracy_header + ['note']

    def speed(key, arch, batch):
        ratio = runs['eager', arch, batch][0] / runs[key, arch, batch][0]
        return f'{ratio:.2f}x'

    rows = []
    for key in args.runtimes:
        if key in missing:
            continue
        row = [RUNTIMES[key][0], str(RUNTIMES[key][2])]
        for arch in args.archs:
            one, many = runs[key, arch, 1], runs[key, arch, args.batch]
            row += [f'{one[0] * 1e3:.1f}', f'{args.batch / many[0]:.1f}',
                    (f'{speed(key, arch, 1)} / {speed(key, arch, args.batch)}'
                     if 'eager' in args.runtimes else '')]
        singles = [runs[key, arch, 1] for arch in args.archs]
        row += [' / '.join(f'{d.file_bytes / 1e6:.1f}' if d.file_bytes
                           else '-' for _, d, _ in singles),
                ' / '.join(f'{d.seconds:.0f}' for _, d, _ in singles),
                ' / '.join(f'{snr:.1f}' for _, _, snr in singles)]
        row += [accuracy_cells.get((key, column), '')
                for column in accuracy_header]
        rows.append(row + [singles[0][1].note])
    print_table(
        f'7. Every runtime, float and 8-bit: the deploy-form classifiers at '
        f'{shape[0]}x{shape[1]}', header, rows)


def trained_accuracy(args, build
                     ) -> Tuple[List[str], Dict[Tuple[str, str], str]]:
    """Table 7's accuracy columns: ``--classifier``'s top-1 and
    ``--segmentor``'s mIoU in each runtime (batch 1), on ``--val-images``
    of their validation sets, the 8-bit runtimes calibrated on images of
    their training sets: the columns' names, and (runtime, column) -> its
    cell ('accuracy (agreement with eager)')."""
    from mvig2_mm.deployment import accuracy, build_export_model
    from mvig2_mm.deployment.calibration import config_images, labelled_images
    header, cells = [], {}
    for trained, size, measure in (
            (args.classifier, args.classifier_size,
             'top-1 % (agreement with eager)'),
            (args.segmentor, args.segmentor_size,
             'mIoU % (pixel agreement with eager)')):
        if not trained:
            continue
        config, checkpoint = trained
        column = f'trained {os.path.basename(config)} {measure}'
        header.append(column)
        shape = (size, size)
        model = build_export_model(config, checkpoint=checkpoint)
        segmentor = getattr(model, 'segmentor', None)
        num_classes = getattr(segmentor, 'num_classes', 0)
        align_corners = getattr(segmentor, 'align_corners', False)
        labelled = labelled_images(config, shape, args.val_images)
        labels = [label for _, label in labelled]
        calibration = config_images(config, shape, max(args.calib, 16))
        expected = accuracy.predict(model, labelled, align_corners)
        with tempfile.TemporaryDirectory() as tmp:
            for key in args.runtimes:
                deployed = build(key, model, shape, 1, tmp, calibration)
                if deployed is None:
                    continue
                found = accuracy.predict(deployed.run, labelled,
                                         align_corners)
                score = accuracy.accuracy(found, labels, num_classes)
                same = accuracy.agreement(found, expected)
                cells[key, column] = f'{score:.1f} ({same:.1f})'
    return header, cells


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
    return (text + (f' ({", ".join(extras)})' if extras else '')
            + f'; load average {load_average()} at start; median of '
            f'{args.repeats} runs after {args.warmup} warm-up')


def load_average() -> str:
    return f'{os.getloadavg()[0]:.2f}' if hasattr(os, 'getloadavg') else '?'


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    import mvig2_mm  # noqa: F401
    bench = Bench(args)
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
    if 7 in args.tables:
        runtimes_table(args, bench)
    print(f'\nLoad average at the end: {load_average()} (over 1 minute; '
          f'{args.threads} threads were ours).')
    return 0


if __name__ == '__main__':
    sys.exit(main())
