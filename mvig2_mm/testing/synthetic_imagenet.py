"""A small synthetic dataset in ImageNet's layout, for smoke tests and demos.

Every class is a coloured shape (class ``c``: shape ``SHAPES[c % 8]``, colour
``COLOURS[(c + c // 8) % 8]``, so up to 64 distinct classes) drawn at a random
position, size and rotation on a textured background (random colour gratings
and noise, independent of the class). A small network learns it in a few
epochs. Written as mmpretrain's ``ImageNet`` / ``CustomDataset`` expect it
(and as torchvision's ``ImageFolder`` does, one folder per class)::

    OUT_DIR/
    ├── train/n00000000/n00000000_0000.JPEG ...
    ├── val/n00000000/n00000000_0000.JPEG ...
    └── meta/
        ├── train.txt    # "n00000000/n00000000_0000.JPEG 0" (in train/)
        ├── val.txt      # likewise, relative to val/
        └── classes.txt  # one class name per line, in label order

Use it in a config with ``dict(type='ImageNet', data_root=OUT_DIR,
split='train', classes=OUT_DIR + '/meta/classes.txt')`` (and ``split='val'``).

Command line::

    python -m mvig2_mm.testing.synthetic_imagenet data/synthetic \
        --num-classes 5 --train-per-class 50 --val-per-class 10 --size 64
"""
import argparse
import math
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ('circle', 'square', 'triangle', 'cross', 'ring', 'diamond', 'star',
          'bar')
COLOURS: Dict[str, Tuple[int, int, int]] = {
    'red': (230, 30, 30),
    'green': (30, 200, 40),
    'blue': (30, 60, 230),
    'yellow': (240, 220, 20),
    'magenta': (220, 30, 220),
    'cyan': (20, 220, 230),
    'white': (250, 250, 250),
    'black': (10, 10, 10),
}
SPLITS = ('train', 'val')


def class_spec(label: int) -> Tuple[str, str]:
    """(shape, colour) of class ``label``."""
    colours = list(COLOURS)
    return (SHAPES[label % len(SHAPES)],
            colours[(label + label // len(SHAPES)) % len(colours)])


def class_names(num_classes: int) -> List[str]:
    """Readable names, e.g. ``'red circle'``."""
    return [' '.join(reversed(class_spec(c))) for c in range(num_classes)]


def wnid(label: int) -> str:
    """An ImageNet-like folder name for class ``label``."""
    return f'n{label:08d}'


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A class-independent texture: colour gratings plus pixel noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.empty((size, size, 3), np.float32)
    image[:] = rng.uniform(70, 180, size=3)
    for _ in range(rng.integers(2, 5)):
        freq = rng.uniform(1, 8, size=2) * rng.choice([-1, 1], size=2)
        phase = rng.uniform(0, 2 * math.pi)
        wave = np.sin(2 * math.pi * (freq[0] * xx + freq[1] * yy) + phase)
        image += wave[..., None] * rng.uniform(-35, 35, size=3)
    image += rng.normal(0, 10, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def _polygon(centre: Tuple[float, float], radius: float, angle: float,
             points: Sequence[Tuple[float, float]]
             ) -> List[Tuple[float, float]]:
    """``points`` (unit-radius polar ``(r, theta)``) scaled, rotated, moved."""
    cx, cy = centre
    return [(cx + radius * r * math.cos(t + angle),
             cy + radius * r * math.sin(t + angle)) for r, t in points]


def _regular(n: int, inner: Optional[float] = None
             ) -> List[Tuple[float, float]]:
    pts = []
    for i in range(n):
        pts.append((1.0, 2 * math.pi * i / n))
        if inner is not None:
            pts.append((inner, 2 * math.pi * (i + 0.5) / n))
    return pts


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str,
                centre: Tuple[float, float], radius: float, angle: float,
                colour: Tuple[int, int, int]) -> None:
    cx, cy = centre
    if shape == 'circle':
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius],
                     fill=colour)
    elif shape == 'ring':
        width = max(2, int(radius * 0.35))
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius],
                     outline=colour, width=width)
    elif shape == 'square':
        draw.polygon(_polygon(centre, radius, angle + math.pi / 4,
                              _regular(4)), fill=colour)
    elif shape == 'diamond':
        draw.polygon(_polygon(centre, radius, angle,
                              [(1, 0), (0.55, math.pi / 2), (1, math.pi),
                               (0.55, 3 * math.pi / 2)]), fill=colour)
    elif shape == 'triangle':
        draw.polygon(_polygon(centre, radius, angle - math.pi / 2,
                              _regular(3)), fill=colour)
    elif shape == 'star':
        draw.polygon(_polygon(centre, radius, angle - math.pi / 2,
                              _regular(5, inner=0.45)), fill=colour)
    elif shape in ('cross', 'bar'):
        for extra in ([0.0, math.pi / 2] if shape == 'cross' else [0.0]):
            cos, sin = math.cos(angle + extra), math.sin(angle + extra)
            draw.polygon([(cx + radius * (x * cos - y * sin),
                           cy + radius * (x * sin + y * cos))
                          for x, y in ((1, .28), (1, -.28), (-1, -.28),
                                       (-1, .28))], fill=colour)
    else:
        raise ValueError(f'Unknown shape {shape!r}; choose from {SHAPES}')


def make_image(label: int, size: int = 64,
               rng: Optional[np.random.Generator] = None) -> Image.Image:
    """One RGB image of class ``label``."""
    rng = rng if rng is not None else np.random.default_rng()
    shape, colour_name = class_spec(label)
    image = Image.fromarray(_background(rng, size))
    radius = size * rng.uniform(0.2, 0.34)
    margin = radius * 0.8
    centre = tuple(rng.uniform(margin, size - margin, size=2))
    jitter = rng.integers(-20, 21, size=3)
    colour = tuple(int(v) for v in np.clip(
        np.array(COLOURS[colour_name]) + jitter, 0, 255))
    _draw_shape(ImageDraw.Draw(image), shape, centre, radius,
                rng.uniform(0, 2 * math.pi), colour)
    return image


def generate(out_dir: str, num_classes: int = 5, train_per_class: int = 50,
             val_per_class: int = 10, size: int = 64, seed: int = 0,
             ext: str = '.JPEG') -> Dict[str, int]:
    """Write the dataset to ``out_dir`` (deterministic for a ``seed``).

    Args:
        out_dir (str): Root of the dataset; created if needed.
        num_classes (int): Number of classes, 1 to 64. Defaults to 5.
        train_per_class (int): Training images per class. Defaults to 50.
        val_per_class (int): Validation images per class. Defaults to 10.
        size (int): Side of the square images in pixels. Defaults to 64.
        seed (int): Random seed. Defaults to 0.
        ext (str): Image file extension, ``'.JPEG'`` (as ImageNet) or
            ``'.png'``. Defaults to ``'.JPEG'``.

    Returns:
        dict: Number of images per split.
    """
    limit = len(SHAPES) * len(COLOURS)
    if not 1 <= num_classes <= limit:
        raise ValueError(f'num_classes must be in [1, {limit}], '
                         f'got {num_classes}')
    if size < 16:
        raise ValueError(f'size must be at least 16 px, got {size}')
    if train_per_class < 0 or val_per_class < 0:
        raise ValueError('Images per class cannot be negative.')
    if ext.lower() not in ('.jpeg', '.jpg', '.png'):
        raise ValueError(f"ext must be '.JPEG', '.jpg' or '.png', got {ext!r}")
    counts = dict(train=train_per_class, val=val_per_class)
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(out_dir, 'meta'), exist_ok=True)
    written = {}
    for split in SPLITS:
        lines = []
        for label in range(num_classes):
            folder = osp.join(out_dir, split, wnid(label))
            os.makedirs(folder, exist_ok=True)
            for i in range(counts[split]):
                name = f'{wnid(label)}_{i:04d}{ext}'
                image = make_image(label, size, rng)
                if ext.lower() == '.png':
                    image.save(osp.join(folder, name))
                else:
                    image.save(osp.join(folder, name), format='JPEG',
                               quality=95)
                lines.append(f'{wnid(label)}/{name} {label}')
        with open(osp.join(out_dir, 'meta', f'{split}.txt'), 'w') as f:
            f.write('\n'.join(lines) + ('\n' if lines else ''))
        written[split] = len(lines)
    with open(osp.join(out_dir, 'meta', 'classes.txt'), 'w') as f:
        f.write('\n'.join(class_names(num_classes)) + '\n')
    return written


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Write a small synthetic dataset in ImageNet layout '
        '(coloured shapes on textured backgrounds).')
    parser.add_argument('out_dir', help='root directory of the dataset')
    parser.add_argument('--num-classes', type=int, default=5)
    parser.add_argument('--train-per-class', type=int, default=50)
    parser.add_argument('--val-per-class', type=int, default=10)
    parser.add_argument('--size', type=int, default=64,
                        help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--ext', default='.JPEG', help=".JPEG, .jpg or .png")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    written = generate(args.out_dir, args.num_classes, args.train_per_class,
                       args.val_per_class, args.size, args.seed, args.ext)
    print(f'Wrote {written["train"]} training and {written["val"]} validation '
          f'images of {args.num_classes} classes to {args.out_dir}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
