# mmdeploy deploy config: an mmdet detector without masks to ONNX Runtime,
# dynamic batch and image size. What mmdeploy's own
# configs/mmdet/detection/detection_onnxruntime_dynamic.py resolves to
# (github:open-mmlab/mmdeploy, v1.3.1). Used by
# tools/deployment/mmdeploy_convert.py.
_base_ = './instance-seg_onnxruntime_dynamic.py'

onnx_config = dict(
    output_names=['dets', 'labels'],
    dynamic_axes=dict(_delete_=True,
                      input=dict({0: 'batch', 2: 'height', 3: 'width'}),
                      dets=dict({0: 'batch', 1: 'num_dets'}),
                      labels=dict({0: 'batch', 1: 'num_dets'})))
codebase_config = dict(
    post_processing=dict(_delete_=True, score_threshold=0.05,
                         confidence_threshold=0.005, iou_threshold=0.5,
                         max_output_boxes_per_class=200, pre_top_k=-1,
                         keep_top_k=100, background_label_id=-1))
