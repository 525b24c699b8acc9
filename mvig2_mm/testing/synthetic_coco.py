"""A small synthetic instance-segmentation dataset in COCO format.

Coloured shapes (circles, rectangles, triangles) on textured backgrounds,
with exact instance masks as polygons, split into train and val::

    python -m mvig2_mm.testing.synthetic_coco data/shapes_coco \
        --num-train 400 --num-val 80

writes ``train/*.png``, ``val/*.png`` and
``annotations/instances_{train,val}.json``
that mmdet's ``CocoDataset`` reads with ``metainfo=dict(classes=CLASSES)``.
Deterministic for a given seed.
"""
import argparse
import json
import math
import os
import os.path as osp
from typing import Dict, List, Sequence, Tuple

import cv2
import numpy as np

CLASSES = ('circle', 'rectangle', 'triangle')
# each class has its own hue range, so colour and shape both carry the class
_HUES = {'circle': (0, 25), 'rectangle': (55, 85), 'triangle': (110, 140)}


def _background(rng: np.random.Generator, size: Tuple[int, int]) -> np.ndarray:
    """A textured background: smooth colour gradient, stripes and noise."""
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(60, 190, size=3)
    slope = rng.uniform(-0.4, 0.4, size=(2, 3))
    img = base + yy[..., None] * slope[0] + xx[..., None] * slope[1]
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(6, 20)
    stripes = np.sin((xx * math.cos(angle) + yy * math.sin(angle))
                     * 2 * math.pi / period)
    img += stripes[..., None] * rng.uniform(5, 20)
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _shape_polygon(rng: np.random.Generator, cls: str, size: Tuple[int, int],
                   min_size: int, max_size: int) -> np.ndarray:
    """Vertices (K, 2) of one shape of class ``cls``, inside the image."""
    h, w = size
    s = rng.uniform(min_size, max_size)
    cx = rng.uniform(s / 2 + 1, w - s / 2 - 1)
    cy = rng.uniform(s / 2 + 1, h - s / 2 - 1)
    if cls == 'circle':
        t = np.linspace(0, 2 * math.pi, 24, endpoint=False)
        pts = np.stack([cx + s / 2 * np.cos(t), cy + s / 2 * np.sin(t)], 1)
    elif cls == 'rectangle':
        aspect = rng.uniform(0.5, 1.0)
        rw, rh = (s, s * aspect) if rng.random() < 0.5 else (s * aspect, s)
        pts = np.array([[cx - rw / 2, cy - rh / 2],
                        [cx + rw / 2, cy - rh / 2],
                        [cx + rw / 2, cy + rh / 2],
                        [cx - rw / 2, cy + rh / 2]])
    else:
        rot = rng.uniform(0, 2 * math.pi)
        t = rot + np.array([0, 2 * math.pi / 3, 4 * math.pi / 3])
        pts = np.stack([cx + s / 2 * np.cos(t), cy + s / 2 * np.sin(t)], 1)
    return pts.astype(np.float32)


def _colour(rng: np.random.Generator, cls: str) -> Tuple[int, int, int]:
    lo, hi = _HUES[cls]
    hsv = np.uint8([[[rng.integers(lo, hi), rng.integers(170, 256),
                      rng.integers(170, 256)]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def check_sizes(image_size: Sequence[int], min_size: int,
                max_size: int) -> Tuple[int, int]:
    """Validate the shape sizes against the image; return (H, W)."""
    h, w = image_size
    if min(h, w) < max_size + 4 or min_size < 4 or min_size > max_size:
        raise ValueError(f'Need 4 <= min_size <= max_size < image side - 4, '
                         f'got min_size={min_size}, max_size={max_size}, '
                         f'image_size={tuple(image_size)}')
    return h, w


def make_image(rng: np.random.Generator, size: Tuple[int, int],
               max_objects: int, min_size: int, max_size: int
               ) -> Tuple[np.ndarray, List[Dict]]:
    """One image (BGR) and its instances (class, polygon, visible mask)."""
    img = _background(rng, size)
    instances: List[Dict] = []
    occupied = np.zeros(size, dtype=bool)
    for _ in range(int(rng.integers(1, max_objects + 1))):
        cls = CLASSES[int(rng.integers(len(CLASSES)))]
        for _attempt in range(10):  # place without overlapping others
            pts = _shape_polygon(rng, cls, size, min_size, max_size)
            mask = np.zeros(size, dtype=np.uint8)
            cv2.fillPoly(mask, [np.round(pts).astype(np.int32)], 1)
            if mask.sum() > 0 and not (occupied & mask.astype(bool)).any():
                break
        else:
            continue
        occupied |= mask.astype(bool)
        cv2.fillPoly(img, [np.round(pts).astype(np.int32)], _colour(rng, cls))
        instances.append(dict(cls=cls, polygon=pts, mask=mask))
    return img, instances


def _annotation(inst: Dict, ann_id: int, image_id: int) -> Dict:
    ys, xs = np.nonzero(inst['mask'])
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    return dict(id=ann_id, image_id=image_id,
                category_id=CLASSES.index(inst['cls']) + 1,
                segmentation=[[round(float(v), 2)
                               for v in inst['polygon'].reshape(-1)]],
                area=float(inst['mask'].sum()),
                bbox=[float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                iscrowd=0)


def generate(out_dir: str, num_train: int = 400, num_val: int = 80,
             image_size: Sequence[int] = (192, 192), max_objects: int = 4,
             min_size: int = 28, max_size: int = 72, seed: int = 0) -> Dict:
    """Write the dataset; return paths of the annotation files.

    Args:
        out_dir (str): Output folder (created).
        num_train (int): Training images. Defaults to 400.
        num_val (int): Validation images. Defaults to 80.
        image_size (Sequence[int]): (H, W). Defaults to (192, 192).
        max_objects (int): Up to this many shapes per image. Defaults to 4.
        min_size (int): Smallest shape size in pixels. Defaults to 28.
        max_size (int): Largest shape size in pixels. Defaults to 72.
        seed (int): Random seed. Defaults to 0.
    """
    h, w = check_sizes(image_size, min_size, max_size)
    rng = np.random.default_rng(seed)
    categories = [dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)]
    paths = {}
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    for split, count in (('train', num_train), ('val', num_val)):
        os.makedirs(osp.join(out_dir, split), exist_ok=True)
        images, annotations = [], []
        for image_id in range(1, count + 1):
            img, instances = make_image(rng, (h, w), max_objects, min_size,
                                        max_size)
            name = f'{image_id:06d}.png'
            cv2.imwrite(osp.join(out_dir, split, name), img)
            images.append(dict(id=image_id, file_name=name, height=h, width=w))
            for inst in instances:
                annotations.append(
                    _annotation(inst, len(annotations) + 1, image_id))
        path = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        with open(path, 'w') as f:
            json.dump(dict(images=images, annotations=annotations,
                           categories=categories), f)
        paths[split] = path
    return paths


def parse_generator_args(doc: str, num_train: int, num_val: int,
                         size: Sequence[int], argv=None) -> argparse.Namespace:
    """The command line of a detection/segmentation set generator:
    ``OUT_DIR [--num-train N] [--num-val N] [--size H W] [--seed S]``."""
    parser = argparse.ArgumentParser(description=doc.split('\n\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num-train', type=int, default=num_train)
    parser.add_argument('--num-val', type=int, default=num_val)
    parser.add_argument('--size', type=int, nargs=2, default=list(size),
                        metavar=('H', 'W'))
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_generator_args(__doc__, 400, 80, (192, 192), argv)
    paths = generate(args.out_dir, args.num_train, args.num_val, args.size,
                     seed=args.seed)
    print(f'Wrote {args.num_train} train / {args.num_val} val images to '
          f'{args.out_dir} ({", ".join(paths.values())})')


if __name__ == '__main__':
    main()
