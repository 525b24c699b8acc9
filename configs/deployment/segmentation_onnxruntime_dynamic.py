# mmdeploy deploy config: an mmseg segmentor to ONNX Runtime, dynamic batch
# and image size, per-pixel class logits out (with_argmax=False). What
# mmdeploy's own configs/mmseg/segmentation_onnxruntime_dynamic.py resolves to
# (github:open-mmlab/mmdeploy, v1.3.1). Used by
# tools/deployment/mmdeploy_convert.py.
_base_ = './_base_/onnxruntime_dynamic.py'

onnx_config = dict(
    output_names=['output'],
    dynamic_axes=dict(
        input=dict({0: 'batch', 2: 'height', 3: 'width'}),
        output=dict({0: 'batch', 2: 'height', 3: 'width'})))
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=False)
