# What the project's mmdeploy deploy configs share: ONNX for ONNX Runtime,
# dynamic batch and image size, as mmdeploy's configs/_base_/onnx_config.py
# in github:open-mmlab/mmdeploy v1.3.1 but at opset 16 (mmdeploy's: 11):
# from opset 16 mmdeploy exports mmcv's aligned RoIAlign as ONNX's RoiAlign
# with half_pixel coordinates, which equals mmcv's; below it shifts the RoIs
# by half a pixel and ONNX Runtime then makes every RoI under one feature
# pixel one pixel wide (docs/deployment.md). The task's config adds its
# outputs and codebase_config.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=16,
    save_file='end2end.onnx',
    input_names=['input'],
    input_shape=None)
backend_config = dict(type='onnxruntime')
