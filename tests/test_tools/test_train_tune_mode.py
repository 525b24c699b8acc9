"""mmengine's ``efficient_conv_bn_eval`` config key with our backbone, as a
user turns it on: tools/train.py traces the backbone and trains."""
from tool_helpers import CONFIGS, data_options, run_tool


def test_train_with_the_config_key(coco_root, tmp_path):
    proc = run_tool('train.py', CONFIGS['det'], '--work-dir', tmp_path,
                    '--cfg-options', *data_options('det', coco_root),
                    'efficient_conv_bn_eval=[backbone]',
                    'model.backbone.norm_eval=True',
                    'model.backbone.drop_path_rate=0', 'train_cfg.max_iters=2',
                    'train_cfg.val_interval=2',
                    'default_hooks.logger.interval=1')
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    assert 'Enabling the "efficient_conv_bn_eval" feature for sub-modules: ' \
           "['backbone']" in log
    assert 'Iter(train) [2/2]' in log
    assert 'coco/bbox_mAP' in log  # validation ran on the traced backbone
