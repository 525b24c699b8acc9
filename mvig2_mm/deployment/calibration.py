"""The images an 8-bit export is calibrated on: images of a config's own
dataset, or of a folder, through the config's test pipeline and its data
preprocessor (normalised as the exported model expects them)."""
import os
import os.path as osp
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import DATASETS, MODELS, init_default_scope

__all__ = ['IMAGE_EXTENSIONS', 'config_images', 'labelled_images']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')

#: The data preprocessor of a config whose model names none, per scope.
DEFAULT_PREPROCESSOR = {'mmpretrain': 'ClsDataPreprocessor',
                        'mmseg': 'SegDataPreProcessor'}


def config_images(config: str, shape: Tuple[int, int], count: int,
                  image_dir: Optional[str] = None,
                  split: str = 'train') -> List[torch.Tensor]:
    """``count`` input batches (1, 3, H, W) for the model of ``config``.

    Images of the config's ``split`` dataloader's dataset (spread evenly
    over it, so that every class of a sorted dataset is seen), or the
    images of ``image_dir`` (sorted by name), each through the config's
    test pipeline (its annotations left out) and data preprocessor, then
    resized bilinearly to ``shape`` where the pipeline gives another size.

    Args:
        config (str): A classification or segmentation config.
        shape (tuple[int, int]): The exported input's (H, W).
        count (int): How many images (fewer if there are fewer).
        image_dir (str, optional): A folder of images instead of the
            dataset.
        split (str): ``'train'``, ``'val'`` or ``'test'``.

    Returns:
        list[Tensor]: The input batches.

    Raises:
        FileNotFoundError: The dataset or ``image_dir`` is not there, or
            holds no images.
    """
    return _preprocessed(config, shape, count, image_dir, split)[0]


def _preprocessed(config: str, shape: Tuple[int, int], count: int,
                  image_dir: Optional[str], split: str,
                  annotations: bool = False
                  ) -> Tuple[List[torch.Tensor], List[dict]]:
    """:func:`config_images`, and the samples of the test pipeline (with
    their annotations if ``annotations``)."""
    cfg = Config.fromfile(config)
    scope = cfg.get('default_scope', 'mmpretrain')
    init_default_scope(scope)
    test_pipeline = [step for step in cfg.test_dataloader.dataset.pipeline
                     if annotations
                     or not step['type'].startswith('LoadAnnotations')]
    if image_dir is not None:
        if not osp.isdir(image_dir):
            raise FileNotFoundError(f'no such folder of images: {image_dir}')
        files = sorted(f for f in os.listdir(image_dir)
                       if f.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise FileNotFoundError(
                f'{image_dir} holds no images ({", ".join(IMAGE_EXTENSIONS)})')
        pipeline = Compose(test_pipeline)
        samples = [pipeline(dict(img_path=osp.join(image_dir, f)))
                   for f in files[:count]]
    else:
        dataset_cfg = cfg[f'{split}_dataloader'].dataset.copy()
        dataset_cfg.pipeline = test_pipeline
        root = dataset_cfg.get('data_root', '')
        if root and not osp.isdir(root):
            raise FileNotFoundError(
                f'the dataset of {osp.basename(config)} is not at {root} '
                f'(calibrate on a folder of images instead: --calib-dir)')
        dataset = DATASETS.build(dataset_cfg)
        picks = np.linspace(0, len(dataset) - 1, min(count, len(dataset)))
        samples = [dataset[int(i)] for i in np.unique(picks.round())]
    preprocessor = dict(cfg.model.get('data_preprocessor')
                        or cfg.get('data_preprocessor') or {})
    preprocessor.setdefault('type', DEFAULT_PREPROCESSOR.get(scope))
    preprocessor.pop('num_classes', None)  # batch augments only
    preprocessor.pop('size', None)  # no padding: one image, its own size
    preprocess = MODELS.build(preprocessor)
    inputs = []
    for sample in samples:
        batch = preprocess(dict(inputs=[sample['inputs']],
                                data_samples=[sample['data_samples']]),
                           False)['inputs']
        if tuple(batch.shape[2:]) != tuple(shape):
            batch = F.interpolate(batch, size=tuple(shape), mode='bilinear',
                                  align_corners=False)
        inputs.append(batch)
    return inputs, samples


def labelled_images(config: str, shape: Tuple[int, int], count: int,
                    split: str = 'val'
                    ) -> List[Tuple[torch.Tensor, Union[int, torch.Tensor]]]:
    """``count`` images of a classification or segmentation config's
    ``split`` dataset, as :func:`config_images` gives them, each with its
    label: the class index, or the label map (H, W) at the image's
    original size.

    Raises:
        FileNotFoundError: The dataset is not there.
    """
    inputs, samples = _preprocessed(config, shape, count, None, split,
                                    annotations=True)
    labels = [sample['data_samples'] for sample in samples]
    labels = [s.gt_sem_seg.data[0] if 'gt_sem_seg' in s else int(s.gt_label)
              for s in labels]
    return list(zip(inputs, labels))
