# What the project's mmdeploy deploy configs share: ONNX (opset 11, as
# mmdeploy's configs/_base_/onnx_config.py in github:open-mmlab/mmdeploy
# v1.3.1) for ONNX Runtime, dynamic batch and image size. The task's config
# adds its outputs and codebase_config.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    input_shape=None)
backend_config = dict(type='onnxruntime')
