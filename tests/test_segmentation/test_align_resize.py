import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip('mmseg')
from mmcv.transforms import Resize  # noqa: E402
from mmseg.registry import TRANSFORMS  # noqa: E402

from mvig2_mm.datasets.transforms import AlignResize  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def random_image(h, w, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (h, w, channels) if channels else (h, w)
    return rng.integers(0, 256, shape, dtype=np.uint8)


@pytest.mark.parametrize('hw,expected', [
    ((375, 500), (512, 704)),    # 683 px wide after rescaling: rounded up
    ((512, 512), (512, 512)),    # already fits and aligned: unchanged
    ((300, 100), (1536, 512)),   # portrait: the long side is the limit
    ((1000, 3000), (512, 1536)),  # downscaled by the long-side limit
    ((257, 1025), (512, 2048)),  # 2042 px wide after rescaling
])
def test_sizes_keep_ratio(hw, expected):
    out = AlignResize(scale=(2048, 512))(dict(img=random_image(*hw)))
    assert out['img'].shape == expected + (3, )
    assert out['img_shape'] == expected
    assert out['pad_shape'] == expected
    assert out['scale'] == (2048, 512)
    assert out['keep_ratio'] is True
    h, w = hw
    assert out['scale_factor'] == pytest.approx(
        (expected[1] / w, expected[0] / h))


@pytest.mark.parametrize('hw', [(375, 500), (333, 517), (97, 1201),
                                (640, 480), (31, 33)])
@pytest.mark.parametrize('divisor', [32, 14])
def test_sides_are_multiples_and_ratio_is_kept(hw, divisor):
    h, w = hw
    out = AlignResize(scale=(2048, 512), size_divisor=divisor)(
        dict(img=random_image(h, w)))
    new_h, new_w = out['img_shape']
    assert new_h % divisor == 0 and new_w % divisor == 0
    # the rescaled image fits (2048, 512); alignment adds < divisor per side
    scale = min(2048 / max(h, w), 512 / min(h, w))
    assert 0 <= new_h - h * scale < divisor + 1
    assert 0 <= new_w - w * scale < divisor + 1
    assert abs(new_w / new_h - w / h) <= (w / h) * divisor / min(new_h, new_w)


def test_matches_mmcv_resize_when_nothing_to_align():
    # 256x384 rescales to 512x768 (multiples of 32) and size_divisor=1
    # never aligns: both are mmcv's Resize, pixel for pixel
    for img, divisor in [(random_image(256, 384), 32),
                         (random_image(375, 500), 1)]:
        ours = AlignResize(scale=(2048, 512), size_divisor=divisor)(
            dict(img=img.copy()))
        theirs = Resize(scale=(2048, 512), keep_ratio=True)(
            dict(img=img.copy()))
        np.testing.assert_array_equal(ours['img'], theirs['img'])
        assert ours['scale_factor'] == theirs['scale_factor']


def test_second_resize_is_an_exact_resize_of_the_first():
    img = random_image(375, 500)
    ours = AlignResize(scale=(2048, 512))(dict(img=img.copy()))
    first = Resize(scale=(2048, 512), keep_ratio=True)(dict(img=img.copy()))
    assert first['img_shape'] == (512, 683)
    second = Resize(scale=(704, 512), keep_ratio=False)(first)
    np.testing.assert_array_equal(ours['img'], second['img'])


def test_without_keep_ratio():
    out = AlignResize(scale=(100, 50), keep_ratio=False)(
        dict(img=random_image(375, 500)))
    assert out['img_shape'] == (64, 128)
    assert out['keep_ratio'] is False
    assert out['scale_factor'] == pytest.approx((128 / 500, 64 / 375))
    out = AlignResize(scale=(96, 64), keep_ratio=False)(
        dict(img=random_image(375, 500)))
    assert out['img_shape'] == (64, 96)


def test_int_scale_and_grayscale():
    out = AlignResize(scale=100)(dict(img=random_image(50, 80, channels=0)))
    # fits 100x100: 62x100, rounded up to 64x128
    assert out['img'].shape == (64, 128)


def test_segmentation_maps_nearest():
    h, w = 375, 500
    gt = np.zeros((h, w), np.uint8)
    gt[:, w // 2:] = 7
    gt[h // 2:, :w // 4] = 255
    extra = (gt // 7).astype(np.uint8)
    results = dict(img=random_image(h, w), gt_seg_map=gt.copy(),
                   gt_extra=extra.copy(), seg_fields=['gt_extra'])
    out = AlignResize(scale=(2048, 512))(results)
    assert out['gt_seg_map'].shape == out['img_shape'] == (512, 704)
    assert out['gt_extra'].shape == (512, 704)
    assert out['gt_seg_map'].dtype == np.uint8
    # nearest: no new labels, the regions stay where they were
    assert set(np.unique(out['gt_seg_map'])) == {0, 7, 255}
    assert set(np.unique(out['gt_extra'])) <= set(np.unique(extra))
    assert (out['gt_seg_map'][:, :340] != 7).all()
    assert (out['gt_seg_map'][:, 364:] == 7).all()
    assert (out['gt_seg_map'][:250, :340] == 0).all()
    assert (out['gt_seg_map'][262:, :170] == 255).all()


def test_missing_seg_map_is_skipped():
    out = AlignResize(scale=(2048, 512))(
        dict(img=random_image(375, 500), seg_fields=[]))
    assert 'gt_seg_map' not in out


@pytest.mark.parametrize('kwargs,match', [
    (dict(scale=0), 'scale must be a positive int'),
    (dict(scale=(512, )), 'scale must be a positive int'),
    (dict(scale=(2048, -512)), 'scale must be a positive int'),
    (dict(scale=(2048.0, 512)), 'scale must be a positive int'),
    (dict(scale='2048'), 'scale must be a positive int'),
    (dict(scale=None), 'scale must be a positive int'),
    (dict(scale=(2048, 512), size_divisor=0), 'size_divisor must be'),
    (dict(scale=(2048, 512), size_divisor=-32), 'size_divisor must be'),
    (dict(scale=(2048, 512), size_divisor=1.5), 'size_divisor must be'),
    (dict(scale=(2048, 512), size_divisor=True), 'size_divisor must be'),
    (dict(scale=(2048, 512), keep_ratio='yes'), 'keep_ratio must be'),
    (dict(scale=(2048, 512), interpolation='cubic'),
     "Unsupported interpolation 'cubic'"),
    (dict(scale=(2048, 512), backend='skimage'),
     "Unsupported backend 'skimage'"),
])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AlignResize(**kwargs)


def test_registered_in_mmseg():
    t = TRANSFORMS.build(dict(type='AlignResize', scale=[2048, 512],
                              size_divisor=16))
    assert isinstance(t, AlignResize)
    assert t.scale == (2048, 512) and t.size_divisor == 16
    assert repr(t) == ("AlignResize(scale=(2048, 512), keep_ratio=True, "
                       "size_divisor=16, interpolation='bilinear', "
                       "backend='cv2')")


def test_import_guard_without_mmseg():
    code = ('import sys; sys.modules["mmseg"] = None\n'
            'import mvig2_mm.datasets.transforms as t\n'
            'print(t.__all__)')
    proc = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == '[]'
