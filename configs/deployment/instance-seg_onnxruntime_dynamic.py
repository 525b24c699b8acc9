# mmdeploy deploy config: an mmdet instance segmentation model (Mask R-CNN)
# to ONNX Runtime, dynamic batch and image size. What mmdeploy's own
# configs/mmdet/instance-seg/instance-seg_onnxruntime_dynamic.py resolves to
# (github:open-mmlab/mmdeploy, v1.3.1), written out without its _base_ files
# (they are not in the mmdeploy wheel). Used by
# tools/deployment/mmdeploy_convert.py.
onnx_config = dict(
    type='onnx',
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=11,
    save_file='end2end.onnx',
    input_names=['input'],
    output_names=['dets', 'labels', 'masks'],
    input_shape=None,
    dynamic_axes=dict(
        input=dict({0: 'batch', 2: 'height', 3: 'width'}),
        dets=dict({0: 'batch', 1: 'num_dets'}),
        labels=dict({0: 'batch', 1: 'num_dets'}),
        masks=dict({0: 'batch', 1: 'num_dets', 2: 'height', 3: 'width'})))
codebase_config = dict(
    type='mmdet',
    task='ObjectDetection',
    model_type='end2end',
    post_processing=dict(
        # for heads without a test_cfg score_thr (the R-CNN head has one;
        # the RPN keeps every score: mvig2_mm/deployment/mmdeploy_rewriters.py)
        score_threshold=0.05,
        confidence_threshold=0.005,
        iou_threshold=0.5,
        max_output_boxes_per_class=200,
        pre_top_k=-1,
        keep_top_k=100,
        background_label_id=-1,
        export_postprocess_mask=False))
backend_config = dict(type='onnxruntime')
