# mmdeploy deploy config: an mmdet instance segmentation model (Mask R-CNN)
# to ONNX Runtime, dynamic batch and image size. What mmdeploy's own
# configs/mmdet/instance-seg/instance-seg_onnxruntime_dynamic.py resolves to
# (github:open-mmlab/mmdeploy, v1.3.1; its _base_ files are not in the
# mmdeploy wheel). Used by tools/deployment/mmdeploy_convert.py.
_base_ = './_base_/onnxruntime_dynamic.py'

onnx_config = dict(
    output_names=['dets', 'labels', 'masks'],
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
