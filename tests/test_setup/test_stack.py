"""The installed OpenMMLab stack works on this machine (issue: set-up)."""
import pickle
import subprocess
import sys

import pytest
import torch


def test_stack_imports_with_supported_versions():
    import mmcv
    import mmdet
    import mmengine
    import mmpretrain
    import mmseg
    import torchvision  # noqa: F401  (mmpretrain needs it to import)

    import mvig2_mm
    assert mmengine.__version__ == '0.10.7'
    assert mmcv.__version__ == '2.1.0'
    assert mmdet.__version__ == '3.3.0'
    assert mmseg.__version__ == '1.2.2'
    assert mmpretrain.__version__ == '1.2.0'
    assert mvig2_mm.__version__


def test_mmcv_nms_on_cpu():
    from mmcv.ops import batched_nms, nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.],
                          [20., 20., 30., 30.], [0.5, 0., 10.5, 10.]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # IoU(0, 1) = 81 / 119 = 0.68; IoU(3, 0) = 95 / 105 = 0.90: both suppressed
    dets, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [3, 2]
    torch.testing.assert_close(dets[:, 4], torch.tensor([0.95, 0.7]))
    torch.testing.assert_close(dets[:, :4], boxes[[3, 2]])
    # IoU(3, 1) = 85.5 / 114.5 = 0.75: a threshold of 0.8 keeps box 1, not
    # box 0
    _, keep = nms(boxes, scores, iou_threshold=0.8)
    assert keep.tolist() == [3, 1, 2]
    # per class: box 3 (class 1) no longer suppresses box 0 (class 0), which
    # still suppresses box 1 (0.68)
    dets, keep = batched_nms(boxes, scores, torch.tensor([0, 0, 0, 1]),
                             dict(type='nms', iou_threshold=0.5))
    assert keep.tolist() == [3, 0, 2]


def test_mmcv_roi_align_numbers():
    from mmcv.ops import RoIAlign
    feat = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    rois = torch.tensor([[0., 0., 0., 4., 4.]])
    out = RoIAlign((2, 2), spatial_scale=1., sampling_ratio=2,
                   aligned=True)(feat, rois)
    # aligned: the RoI spans pixel centres -0.5..3.5, each bin averages its
    # 2x2 pixel centres exactly: mean(0, 1, 4, 5) = 2.5, ...
    expected = torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]])
    torch.testing.assert_close(out, expected)
    # and agrees with torchvision on an off-grid RoI
    import torchvision
    feat = torch.randn(1, 3, 9, 11)
    rois = torch.tensor([[0., 1.3, 0.7, 8.2, 6.9]])
    ours = RoIAlign((3, 3), 0.5, 2, aligned=True)(feat, rois)
    ref = torchvision.ops.roi_align(feat, rois, (3, 3), 0.5, 2, aligned=True)
    torch.testing.assert_close(ours, ref)


def test_mmdet_config_base_resolves(tmp_path):
    from mmengine.config import Config
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        "_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'\n"
        "model = dict(backbone=dict(depth=18))\n")
    cfg = Config.fromfile(str(cfg_file))
    assert cfg.model.type == 'MaskRCNN'
    assert cfg.model.backbone.depth == 18
    assert cfg.model.roi_head.mask_head.num_classes == 80


def test_collect_env_reports_compiled_ops():
    out = subprocess.run([sys.executable, '-m', 'mvig2_mm.utils.collect_env'],
                         capture_output=True, text=True, check=True).stdout
    assert 'MMCV ops: compiled' in out
    for name in ('PyTorch', 'MMEngine', 'MMDetection', 'MMSegmentation',
                 'MMPretrain', 'mvig2_mm'):
        assert f'{name}: ' in out


class _NotAllowListed:
    pass


def test_weights_only_stays_on_for_unknown_classes(tmp_path):
    import mvig2_mm  # noqa: F401  (registers the allow-list)
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _NotAllowListed()}, path)
    with pytest.raises(pickle.UnpicklingError, match='Weights only load'):
        torch.load(path)


def _toy_runner(work_dir, max_iters, resume=False):
    import torch.nn as nn
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class ToyModel(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            out = self.linear(inputs).squeeze(1)  # default_collate stacks
            if mode == 'loss':
                return dict(loss=((out - labels) ** 2).mean())
            return out

    dataset = [dict(inputs=torch.randn(2), labels=torch.randn(()))
               for _ in range(8)]
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=dataset, batch_size=2,
                              sampler=dict(type='DefaultSampler',
                                           shuffle=True),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        param_scheduler=dict(type='MultiStepLR', milestones=[2],
                             by_epoch=False),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2,
                                           by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        resume=resume, default_scope='mmengine',
        randomness=dict(seed=0),
        experiment_name=f'toy_{max_iters}_{resume}')


def test_runner_checkpoint_resumes_with_weights_only_default(tmp_path):
    import mvig2_mm  # noqa: F401
    runner = _toy_runner(tmp_path, max_iters=4)
    runner.train()
    ckpt = tmp_path / 'iter_4.pth'
    assert ckpt.is_file()
    # what broke before: mmengine checkpoints hold HistoryBuffer and numpy
    content = torch.load(ckpt)  # the weights_only default, not disabled
    assert 'message_hub' in content and content['meta']['iter'] == 4

    resumed = _toy_runner(tmp_path, max_iters=6, resume=True)
    resumed.train()
    assert resumed.iter == 6
    assert (tmp_path / 'iter_6.pth').is_file()
    # the scheduler state came back too: lr stays decayed after milestone 2
    final = torch.load(tmp_path / 'iter_6.pth')
    assert final['param_schedulers'][0]['_global_step'] == 6
    assert final['optimizer']['param_groups'][0]['lr'] == pytest.approx(1e-3)


def test_getattr_in_checkpoints_is_restricted(tmp_path):
    """Only HistoryBuffer's statistics methods resolve through getattr."""
    from mmengine.logging.history_buffer import HistoryBuffer

    import mvig2_mm  # noqa: F401

    class Sneaky:
        def __reduce__(self):  # any other attribute, e.g. a class method
            return getattr, (HistoryBuffer, 'register_statistics')

    path = tmp_path / 'sneaky.pth'
    torch.save({'x': Sneaky()}, path)
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        torch.load(path)
    ok = tmp_path / 'ok.pth'
    torch.save({'m': HistoryBuffer._statistics_methods['mean']}, ok)
    assert torch.load(ok)['m'] is HistoryBuffer.mean
