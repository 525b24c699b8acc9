# mmdeploy deploy config: an mmseg segmentor to ONNX Runtime, dynamic batch
# and image size, per-pixel class logits out (with_argmax=False). What
# mmdeploy's own configs/mmseg/segmentation_onnxruntime_dynamic.py resolves to
# (github:open-mmlab/mmdeploy, v1.3.1), written out without its _base_ files.
# Used by tools/deployment/mmdeploy_convert.py.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['output'],
    input_shape=None,
    dynamic_axes=dict(
        input=dict({0: 'batch', 2: 'height', 3: 'width'}),
        output=dict({0: 'batch', 2: 'height', 3: 'width'})))
codebase_config = dict(type='mmseg', task='Segmentation', with_argmax=False)
backend_config = dict(type='onnxruntime')
