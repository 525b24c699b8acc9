"""Pre-flight checks of a config's datasets, and one-line reasons for the
errors that bad data raises later.

``tools/train.py`` and ``tools/test.py`` call :func:`check_data` before
they build the ``Runner``, so that a wrong path or a broken annotation file
stops the run at once with one line naming the file, instead of a deep
traceback minutes later (after the model is built, or in the middle of an
epoch).

The checks stay cheap on a large dataset:

- existence of ``data_root``, the annotation file and every ``data_prefix``
  folder of each dataset (wrappers such as ``RepeatDataset`` and
  ``ConcatDataset`` are followed), and of an evaluator's ``ann_file``;
- mmdet COCO-style datasets: the annotation file is a JSON object with
  ``images``, ``annotations`` and ``categories`` lists, and the first
  :data:`SAMPLE` images it lists exist and are not empty. A file larger than
  :data:`MAX_JSON_BYTES` (100 MB; COCO's train2017 file has 448 MB) is not
  parsed twice: only its start (``{``) and the three keys are looked for;
- mmseg datasets: a sample of at most :data:`SAMPLE` label maps, spread over
  the dataset: each exists, has the size of its image, and holds only class
  ids below the model's ``num_classes`` or the ignore index (after
  ``reduce_zero_label``). The other label maps are not read; the range check
  is skipped for datasets that remap classes (``label_map``).

Paths that are URLs (``s3://...``) or read through a non-local
``backend_args`` are not checked.

Images are only decoded when the pipeline loads them.
:func:`describe_load_error` recognises, from the exception's message, the
error of a file that cannot be read there (mmcv's ``LoadImageFromFile``
names it; so does the traceback text of a ``DataLoader`` worker) and returns
``cannot read image PATH: REASON``; the tools print that line instead of the
traceback (``tools/infer.py`` too). An error that does not name its file
keeps its traceback.
"""
import inspect
import json
import mmap
import os
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

#: How many images (COCO) or label maps (segmentation) are checked per dataset.
SAMPLE = 16
#: Larger COCO annotation files are only probed, not parsed (see above).
MAX_JSON_BYTES = 100 * 2**20

_WRAPPER_KEYS = ('dataset', 'datasets')
_FOLDER_NAMES = {
    'img': 'image folder', 'img_path': 'image folder',
    'seg_map_path': 'annotation folder', 'seg': 'annotation folder'
}


class DataCheckError(ValueError):
    """A dataset does not fit its config; the message is one line."""


# --------------------------------------------------------------- helpers
def _is_remote(path) -> bool:
    return isinstance(path, str) and ('://' in path or path.startswith('s3:'))


def _join(root: Optional[str], path: str) -> str:
    if not path:
        return root or ''
    if root and not osp.isabs(path) and not _is_remote(path):
        return osp.join(root, path)
    return path


def _type_name(dataset_cfg) -> str:
    kind = dataset_cfg.get('type', '')
    return kind if isinstance(kind, str) else getattr(kind, '__name__', '')


def _dataset_class(dataset_cfg, scope: Optional[str]):
    """The registered class of a dataset config, or None."""
    kind = dataset_cfg.get('type')
    if not isinstance(kind, str):
        return kind if inspect.isclass(kind) else None
    from mmengine.registry import DATASETS
    try:  # as the Runner builds it: from the registry of the config's scope
        with DATASETS.switch_scope_and_registry(scope) as registry:
            return registry.get(kind)
    except Exception:  # an unknown scope or type: the Runner will say so
        return None


def _default(cls, name: str, fallback=None):
    """The default of argument ``name`` of ``cls.__init__`` (or of a base)."""
    for klass in getattr(cls, '__mro__', ()):
        init = klass.__dict__.get('__init__')
        if init is None:
            continue
        param = inspect.signature(init).parameters.get(name)
        if param is not None and param.default is not param.empty:
            return param.default
    return fallback


def _subclass_of(cls, module: str, name: str) -> bool:
    """``issubclass(cls, module.name)``, False when ``module`` is missing."""
    if cls is None:
        return False
    try:
        base = getattr(__import__(module, fromlist=[name]), name)
    except ImportError:
        return False
    return inspect.isclass(cls) and issubclass(cls, base)


def _leaf_datasets(dataset_cfg) -> Iterator[dict]:
    """The datasets that read files, inside any wrappers."""
    inner = [dataset_cfg.get(key) for key in _WRAPPER_KEYS
             if dataset_cfg.get(key) is not None]
    if not inner:
        yield dataset_cfg
        return
    for item in inner:
        for sub in (item if isinstance(item, (list, tuple)) else [item]):
            if isinstance(sub, dict):
                yield from _leaf_datasets(sub)


def _spread(items: Sequence, count: int) -> List:
    """At most ``count`` items, evenly spread over ``items``."""
    if len(items) <= count:
        return list(items)
    return [items[int(i)] for i in np.linspace(0, len(items) - 1, count)]


# --------------------------------------------------------------- checks
def check_data(cfg, dataloaders: Sequence[str],
               evaluators: Sequence[str] = (), sample: int = SAMPLE) -> None:
    """Check the datasets of ``dataloaders`` (config keys, e.g.
    ``'train_dataloader'``) and the ``ann_file`` of ``evaluators``.

    Raises:
        DataCheckError: on the first problem, naming the loader and the file.
    """
    scope = cfg.get('default_scope')
    for key in dataloaders:
        loader = cfg.get(key)
        if not loader or loader.get('dataset') is None:
            continue
        for dataset_cfg in _leaf_datasets(loader['dataset']):
            try:
                _check_dataset(dataset_cfg, cfg, scope, sample)
            except DataCheckError as e:
                raise DataCheckError(f'{key}: {e}') from None
    for key in evaluators:
        metrics = cfg.get(key)
        if isinstance(metrics, dict):
            metrics = metrics.get('metrics', [metrics])
        for metric in metrics if isinstance(metrics, (list, tuple)) else []:
            ann_file = metric.get('ann_file') if isinstance(metric, dict) \
                else None
            if ann_file and not _is_remote(ann_file) and \
                    not osp.isfile(ann_file):
                raise DataCheckError(
                    f'{key}: annotation file not found: {ann_file}')


def _check_dataset(dataset_cfg, cfg, scope, sample: int) -> None:
    backend = dataset_cfg.get('backend_args') or {}
    if backend.get('backend', 'local') != 'local':
        return
    cls = _dataset_class(dataset_cfg, scope)
    data_root = dataset_cfg.get('data_root')
    if data_root:
        if _is_remote(data_root):
            return
        if not osp.isdir(data_root):
            raise DataCheckError(f'data_root not found: {data_root}')

    ann_file = dataset_cfg.get('ann_file') or ''
    if not isinstance(ann_file, str):
        ann_file = ''
    if not ann_file and dataset_cfg.get('split') and \
            _subclass_of(cls, 'mmpretrain.datasets', 'ImageNet'):
        # ImageNet(split=...) reads meta/SPLIT.txt when there is one
        candidate = osp.join('meta', f"{dataset_cfg['split']}.txt")
        if osp.isfile(_join(data_root, candidate)):
            ann_file = candidate
    ann_path = _join(data_root, ann_file) if ann_file else ''
    if ann_path and not _is_remote(ann_path) and not osp.exists(ann_path):
        raise DataCheckError(f'annotation file not found: {ann_path}')

    prefixes = dataset_cfg.get('data_prefix')
    if not prefixes and dataset_cfg.get('split') and \
            _subclass_of(cls, 'mmpretrain.datasets', 'ImageNet'):
        prefixes = dataset_cfg['split']  # ImageNet(split=...): its folder
    if isinstance(prefixes, str):  # mmpretrain: the image folder
        prefixes = dict(img_path=prefixes)
    folders: Dict[str, str] = {}
    for key, prefix in dict(prefixes or {}).items():
        if not isinstance(prefix, str):
            continue
        path = _join(data_root, prefix)
        folders[key] = path
        if path and not _is_remote(path) and not osp.isdir(path):
            name = _FOLDER_NAMES.get(key, f'data_prefix.{key} folder')
            raise DataCheckError(f'{name} not found: {path}')

    classes_file = dataset_cfg.get('classes')
    if isinstance(classes_file, str) and not osp.isfile(classes_file):
        raise DataCheckError(f'classes file not found: {classes_file}')

    if ann_path and ann_path.endswith('.json') and \
            _subclass_of(cls, 'mmdet.datasets', 'CocoDataset'):
        _check_coco(ann_path, folders.get('img', data_root or ''), sample)
    if _subclass_of(cls, 'mmseg.datasets', 'BaseSegDataset'):
        _check_label_maps(dataset_cfg, cls, cfg, ann_path, folders, sample)


def _check_coco(path: str, img_dir: str, sample: int) -> None:
    """A COCO annotation file: a JSON object with the three lists."""
    keys = ('images', 'annotations', 'categories')
    if osp.getsize(path) > MAX_JSON_BYTES:  # probe, do not parse
        with open(path, 'rb') as f, \
                mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            start = data[:64].lstrip()
            missing = [k for k in keys if data.find(f'"{k}"'.encode()) < 0]
        if not start.startswith(b'{'):
            raise DataCheckError(
                f'not a COCO annotation file (not a JSON object): {path}')
        if missing:
            raise DataCheckError(
                f'not a COCO annotation file (no {", ".join(missing)}): '
                f'{path}')
        return
    try:
        with open(path, 'rb') as f:
            content = json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataCheckError(
            f'not a COCO annotation file (invalid JSON: {reason}): {path}'
        ) from None
    if not isinstance(content, dict):
        raise DataCheckError(
            f'not a COCO annotation file (not a JSON object): {path}')
    missing = [k for k in keys if not isinstance(content.get(k), list)]
    if missing:
        raise DataCheckError(
            f'not a COCO annotation file (no {", ".join(missing)} '
            f'list{"s" if len(missing) > 1 else ""}): {path}')
    if not content['images']:
        raise DataCheckError(f'annotation file lists no images: {path}')
    if not img_dir or _is_remote(img_dir):
        return
    for image in content['images'][:sample]:
        name = image.get('file_name') if isinstance(image, dict) else None
        if not name:
            raise DataCheckError(
                f'not a COCO annotation file (an image without file_name): '
                f'{path}')
        image = osp.join(img_dir, name)
        if not osp.isfile(image):
            raise DataCheckError(f'image not found: {image} (listed in '
                                 f'{path})')
        if osp.getsize(image) == 0:  # OpenCV's error would not name it
            raise DataCheckError(f'cannot read image {image}: empty file '
                                 f'(listed in {path})')


def _num_classes(cfg) -> Optional[int]:
    head = cfg.get('model', {}).get('decode_head')
    if isinstance(head, (list, tuple)):
        head = head[-1] if head else None
    num = head.get('num_classes') if isinstance(head, dict) else None
    return num if isinstance(num, int) else None


def _seg_pairs(img_dir: str, seg_dir: str, ann_path: str, img_suffix: str,
               seg_suffix: str, sample: int) -> List[Tuple[str, str]]:
    """(image, label map) paths of a sample, as mmseg pairs them."""
    if ann_path and osp.isfile(ann_path):
        with open(ann_path) as f:
            names = [line.strip() for line in f if line.strip()]
    else:
        names = []
        for root, _, files in os.walk(img_dir):
            rel = osp.relpath(root, img_dir)
            names += [osp.normpath(osp.join(
                rel, name[:len(name) - len(img_suffix)]))
                for name in files if name.endswith(img_suffix)]
        names.sort()
    return [(osp.join(img_dir, name + img_suffix),
             osp.join(seg_dir, name + seg_suffix))
            for name in _spread(names, sample)]


def _check_label_maps(dataset_cfg, cls, cfg, ann_path: str,
                      folders: Dict[str, str], sample: int) -> None:
    from PIL import Image

    seg_dir = folders.get('seg_map_path')
    if not seg_dir:
        return

    def get(key, fallback):  # the config's value, else the class default
        return dataset_cfg.get(key, _default(cls, key, fallback))

    img_suffix = get('img_suffix', '.jpg')
    seg_suffix = get('seg_map_suffix', '.png')
    reduce_zero_label = get('reduce_zero_label', False)
    ignore_index = get('ignore_index', 255)
    num_classes = _num_classes(cfg)
    classes = (dataset_cfg.get('metainfo') or {}).get('classes')
    own = (getattr(cls, 'METAINFO', None) or {}).get('classes')
    if classes is not None and own is not None and \
            tuple(classes) != tuple(own):
        num_classes = None  # the dataset remaps ids (label_map): skip

    for img_path, seg_path in _seg_pairs(folders.get('img_path', ''),
                                         seg_dir, ann_path, img_suffix,
                                         seg_suffix, sample):
        if not osp.isfile(seg_path):
            raise DataCheckError(
                f'label map not found: {seg_path} (for image {img_path})')
        try:
            with Image.open(img_path) as img:
                img_size = img.size
        except FileNotFoundError:
            raise DataCheckError(f'image not found: {img_path}') from None
        except Exception as e:
            raise DataCheckError(
                f'cannot read image {img_path}: {_reason(e)}') from None
        try:
            with Image.open(seg_path) as seg:
                label = np.asarray(seg)
        except Exception as e:
            raise DataCheckError(
                f'cannot read label map {seg_path}: {_reason(e)}') from None
        if label.ndim != 2:
            raise DataCheckError(
                f'label map {seg_path} has {label.shape[-1]} channels; a '
                f'label map has one (class ids)')
        if label.shape[::-1] != img_size:
            raise DataCheckError(
                f'label map {seg_path} is {label.shape[1]}x{label.shape[0]} '
                f'but its image {img_path} is {img_size[0]}x{img_size[1]} '
                f'(width x height)')
        if num_classes is None:
            continue
        raw = np.unique(label).astype(np.int64)
        ids = raw
        if reduce_zero_label:  # as mmseg: 0 -> 255, others - 1 (255 stays)
            ids = np.where((raw == 0) | (raw == 255), 255, raw - 1)
        bad = raw[(ids >= num_classes) & (ids != ignore_index)]
        if bad.size:
            valid = (f'1..{num_classes} with reduce_zero_label'
                     if reduce_zero_label else f'0..{num_classes - 1}')
            raise DataCheckError(
                f'label map {seg_path} holds class ids out of range: '
                f'{", ".join(str(v) for v in bad[:8])} (the model has '
                f'{num_classes} classes: ids {valid}, ignore index '
                f'{ignore_index})')


# --------------------------------------------------------------- load errors
def _reason(exc: BaseException) -> str:
    """A decoder's error as a short reason."""
    if isinstance(exc, FileNotFoundError):
        return 'no such file'
    text = str(exc).strip().splitlines()
    return f'{type(exc).__name__}: {text[0]}' if text else type(exc).__name__


#: mmcv's ``LoadImageFromFile`` on a file that does not decode
_MMCV_FAILED = re.compile(r'failed to load image: (.+)$')
_WORKER_PATTERNS = (
    ('image', re.compile(_MMCV_FAILED.pattern, re.M), 'not a readable image'),
    (None, re.compile(r"No such file or directory: '(.+)'$", re.M),
     'no such file'),
)


def describe_load_error(exc: BaseException) -> Optional[str]:
    """``'cannot read image PATH: REASON'`` (or ``label map``) when ``exc``
    is the error of a data pipeline that could not read that file; None
    otherwise.

    Only the exception's own message is read:

    - in the main process, mmcv's ``LoadImageFromFile`` raises
      ``AssertionError('failed to load image: PATH')`` for a file that is
      not an image; it is recognised when ``PATH`` is a file that exists
      (the same message about a file that is not there is not mmcv's);
    - an error re-raised from a ``DataLoader`` worker carries the worker's
      traceback as its text, in which mmcv's loading transforms, a missing
      file or mmcv's ``failed to load image`` are recognised.

    Decoders that do not name the file (OpenCV on an empty file, Pillow on
    a corrupt label map) cannot be told apart from a bug that way: their
    errors keep their traceback. The pre-flight checks find such files in
    their sample (:func:`check_data`).
    """
    text = str(exc)
    if 'DataLoader worker' not in text:
        match = _MMCV_FAILED.fullmatch(text.strip()) \
            if isinstance(exc, AssertionError) else None
        if match and osp.isfile(match.group(1)):
            return f'cannot read image {match.group(1)}: not a readable image'
        return None
    if 'transforms/loading.py' not in text:
        return None
    kind = 'label map' if '_load_seg_map' in text else 'image'
    # the error itself is the last line (the lines above quote the source)
    last = text.strip().splitlines()[-1]
    for expected, pattern, reason in _WORKER_PATTERNS:
        match = pattern.search(last)
        if match and expected in (None, kind):
            return f'cannot read {kind} {match.group(1).strip()}: {reason}'
    return None
