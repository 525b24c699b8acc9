"""Test-time "align resize" of the MobileViGv2 segmentation recipe (mmseg)."""
import math
from typing import Dict, Optional, Sequence, Tuple, Union

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

_INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')
_BACKENDS = ('cv2', 'pillow')


@TRANSFORMS.register_module()
class AlignResize(BaseTransform):
    """Resize to fit ``scale``, then to sides that are multiples of
    ``size_divisor``.

    The test-time resize of the MobileViGv2 (and PoolFormer/EfficientFormer)
    ADE20K recipe. First the image is resized like mmcv's ``Resize``: with
    ``keep_ratio=True`` it is rescaled as large as possible inside ``scale``
    (long side <= ``max(scale)``, short side <= ``min(scale)``), otherwise to
    ``scale`` exactly. Then each side is rounded *up* to the next multiple of
    ``size_divisor`` and the image is resized again to that exact size (no
    second resize when the sides are already multiples). Compared with
    ``Resize`` followed by mmseg's ``ResizeToMultiple``, ``scale_factor`` here
    describes the whole resize, and segmentation maps are always brought to
    the image's final size.

    Segmentation maps (``gt_seg_map`` and every key of ``seg_fields``) follow
    the same two steps with nearest-neighbour interpolation. In the usual test
    pipeline annotations are loaded *after* this transform, so the ground
    truth keeps its original size; mmseg's ``postprocess_result`` resizes
    predictions back to ``ori_shape``, so metrics are computed at the
    original resolution.

    Required Keys:

    - img
    - gt_seg_map (optional)
    - seg_fields (optional)

    Modified Keys:

    - img
    - img_shape
    - pad_shape
    - gt_seg_map and the keys of ``seg_fields`` (if present)

    Added Keys:

    - scale
    - scale_factor
    - keep_ratio

    Args:
        scale (int | tuple[int, int]): Target scale ``(w, h)``; an int means
            ``(scale, scale)``. With ``keep_ratio`` the order does not matter
            (long and short edge limits).
        keep_ratio (bool): Keep the aspect ratio in the first resize.
            Defaults to True.
        size_divisor (int): The final sides are multiples of this.
            Defaults to 32.
        interpolation (str): Interpolation of the image: ``'nearest'``,
            ``'bilinear'``, ``'bicubic'``, ``'area'`` or ``'lanczos'`` (the
            ``'pillow'`` backend supports fewer). Defaults to ``'bilinear'``.
        backend (str): ``'cv2'`` or ``'pillow'``. Defaults to ``'cv2'``.

    Example:
        >>> import numpy as np
        >>> from mvig2_mm.datasets.transforms import AlignResize
        >>> t = AlignResize(scale=(2048, 512), keep_ratio=True)
        >>> out = t(dict(img=np.zeros((375, 500, 3), np.uint8)))
        >>> out['img_shape'], out['scale_factor']
        ((512, 704), (1.408, 1.3653333333333333))
    """

    def __init__(self,
                 scale: Union[int, Tuple[int, int]],
                 keep_ratio: bool = True,
                 size_divisor: int = 32,
                 interpolation: str = 'bilinear',
                 backend: str = 'cv2') -> None:
        self.scale = self._parse_scale(scale)
        if not isinstance(keep_ratio, bool):
            raise ValueError(f'keep_ratio must be a bool, got {keep_ratio!r}')
        if not _is_int(size_divisor) or size_divisor < 1:
            raise ValueError(f'size_divisor must be a positive int, got '
                             f'{size_divisor!r}')
        if interpolation not in _INTERPOLATIONS:
            raise ValueError(f'Unsupported interpolation {interpolation!r}; '
                             f'choose one of {list(_INTERPOLATIONS)}')
        if backend not in _BACKENDS:
            raise ValueError(f'Unsupported backend {backend!r}; choose one of '
                             f'{list(_BACKENDS)}')
        self.keep_ratio = keep_ratio
        self.size_divisor = int(size_divisor)
        self.interpolation = interpolation
        self.backend = backend

    @staticmethod
    def _parse_scale(scale) -> Tuple[int, int]:
        if _is_int(scale):
            scale = (scale, scale)
        if (not isinstance(scale, Sequence) or isinstance(scale, str)
                or len(scale) != 2 or not all(_is_int(s) for s in scale)
                or min(scale) < 1):
            raise ValueError(f'scale must be a positive int or a (w, h) pair '
                             f'of positive ints, got {scale!r}')
        return int(scale[0]), int(scale[1])

    def aligned_size(self, size: Tuple[int, int]) -> Tuple[int, int]:
        """Round a ``(w, h)`` size up to multiples of ``size_divisor``."""
        d = self.size_divisor
        return tuple(int(math.ceil(s / d)) * d for s in size)  # type: ignore

    def _resize(self, img: np.ndarray, interpolation: str,
                final_size: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """The two resizes. ``final_size`` ``(w, h)`` forces the second one
        to an exact size (used for segmentation maps)."""
        if self.keep_ratio:
            out = mmcv.imrescale(img, self.scale, interpolation=interpolation,
                                 backend=self.backend)
        else:
            out = mmcv.imresize(img, self.scale, interpolation=interpolation,
                                backend=self.backend)
        size = (out.shape[1], out.shape[0])
        target = final_size or self.aligned_size(size)
        if tuple(target) != size:
            out = mmcv.imresize(out, target, interpolation=interpolation,
                                backend=self.backend)
        return out

    def transform(self, results: Dict) -> Dict:
        """Resize ``results['img']`` and its segmentation maps.

        Args:
            results (dict): Result dict from the loading pipeline.

        Returns:
            dict: The results with the keys listed above updated.
        """
        img = results['img']
        h, w = img.shape[:2]
        img = self._resize(img, self.interpolation)
        new_h, new_w = img.shape[:2]
        results['img'] = img
        results['img_shape'] = (new_h, new_w)
        results['pad_shape'] = (new_h, new_w)
        results['scale'] = self.scale
        results['scale_factor'] = (new_w / w, new_h / h)
        results['keep_ratio'] = self.keep_ratio

        keys = list(results.get('seg_fields', []))
        if results.get('gt_seg_map') is not None and 'gt_seg_map' not in keys:
            keys.append('gt_seg_map')
        for key in keys:
            if results.get(key) is not None:
                results[key] = self._resize(results[key], 'nearest',
                                            final_size=(new_w, new_h))
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(scale={self.scale}, '
                f'keep_ratio={self.keep_ratio}, '
                f'size_divisor={self.size_divisor}, '
                f'interpolation={self.interpolation!r}, '
                f'backend={self.backend!r})')


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)
