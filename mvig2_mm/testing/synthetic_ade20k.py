"""A small synthetic semantic-segmentation dataset in the ADE20K layout.

The images of :mod:`mvig2_mm.testing.synthetic_coco` (coloured shapes on
textured backgrounds) with PNG label maps::

    python -m mvig2_mm.testing.synthetic_ade20k data/shapes_ade

writes ``images/{training,validation}/*.jpg`` and
``annotations/{training,validation}/*.png`` like ADE20K. As there, label 0 is
"other" (ignored with ``reduce_zero_label=True``) and the classes
:data:`CLASSES` are stored as 1..4 (0..3 after the reduction).
"""
import os
import os.path as osp
from typing import Sequence

import cv2
import numpy as np

from .synthetic_coco import CLASSES as SHAPES
from .synthetic_coco import check_sizes, make_image, parse_generator_args

CLASSES = ('background', ) + SHAPES
PALETTE = [(120, 120, 120), (220, 20, 60), (0, 160, 0), (30, 60, 230)]


def generate(out_dir: str, num_train: int = 300, num_val: int = 60,
             image_size: Sequence[int] = (128, 128), max_objects: int = 4,
             min_size: int = 20, max_size: int = 56, seed: int = 0) -> None:
    """Write the dataset (deterministic for a given seed)."""
    h, w = check_sizes(image_size, min_size, max_size)
    rng = np.random.default_rng(seed)
    for split, count in (('training', num_train), ('validation', num_val)):
        img_dir = osp.join(out_dir, 'images', split)
        ann_dir = osp.join(out_dir, 'annotations', split)
        os.makedirs(img_dir, exist_ok=True)
        os.makedirs(ann_dir, exist_ok=True)
        for i in range(count):
            img, instances = make_image(rng, (h, w), max_objects, min_size,
                                        max_size)
            label = np.ones((h, w), dtype=np.uint8)  # 1 = background
            for inst in instances:
                label[inst['mask'].astype(bool)] = \
                    CLASSES.index(inst['cls']) + 1
            name = f'synthetic_{split}_{i:06d}'
            cv2.imwrite(osp.join(img_dir, name + '.jpg'), img,
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            cv2.imwrite(osp.join(ann_dir, name + '.png'), label)


def main(argv=None) -> None:
    args = parse_generator_args(__doc__, 300, 60, (128, 128), argv)
    generate(args.out_dir, args.num_train, args.num_val, args.size,
             seed=args.seed)
    print(f'Wrote {args.num_train} training / {args.num_val} validation '
          f'images to {args.out_dir}')


if __name__ == '__main__':
    main()
