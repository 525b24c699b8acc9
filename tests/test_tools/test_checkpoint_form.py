"""tools/test.py's pre-flight asks what a checkpoint is (family and form of
its backbone) the same way for every family: a deploy-form file into a
training-form config, or a file of another family, stops it with one line
before anything is loaded."""
import pytest

from tool_helpers import (CONFIGS, SMALLEST, assert_one_line_error,
                          data_options, family_options, run_tool,
                          save_det_checkpoint)


@pytest.mark.parametrize('family', list(SMALLEST))
def test_deploy_form_file_into_the_training_config(family, coco_root,
                                                   tmp_path):
    checkpoint = save_det_checkpoint(tmp_path / 'deploy.pth', True, family)
    proc = run_tool('test.py', CONFIGS['det'], checkpoint, '--work-dir',
                    tmp_path / 'work', '--cfg-options',
                    *data_options('det', coco_root), *family_options(family))
    line = assert_one_line_error(proc, 'deploy.pth holds the deploy form')
    assert line == (
        f'tools/test.py: error: deploy.pth holds the deploy form of the '
        f'{family} backbone (norms folded into its convolutions): add '
        f'--cfg-options model.backbone.deploy=True (classifiers: use the '
        f'config in configs/classification/deploy/)')


@pytest.mark.parametrize('family,config_family', [
    ('MobileViG', 'MobileViGv2'), ('GreedyViG', 'MobileViGv2'),
    ('MobileViGv2', 'GreedyViG')])
def test_file_of_another_family(family, config_family, coco_root, tmp_path):
    checkpoint = save_det_checkpoint(tmp_path / 'other.pth', False, family)
    proc = run_tool('test.py', CONFIGS['det'], checkpoint, '--work-dir',
                    tmp_path / 'work', '--cfg-options',
                    *data_options('det', coco_root),
                    *family_options(config_family))
    assert_one_line_error(
        proc, f'other.pth holds a {family} backbone but the config builds '
        f'{config_family}: use a {family} config')
