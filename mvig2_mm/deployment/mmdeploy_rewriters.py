"""The project's mmdeploy rewriters: a two-stage detector's proposals and
detections as mmdet computes them (imported by
:func:`mvig2_mm.deployment.end2end.convert`; mmdeploy applies a rewriter only
inside its export). Both replace mmdeploy's own (1.3.1) for the ONNX Runtime
backend.

RPN.
mmdeploy's own rewrite of ``RPNHead.predict_by_feat`` (1.3.1,
``mmdeploy/codebase/mmdet/models/dense_heads/rpn_head.py``) runs one NMS
over the proposals of all pyramid levels together, and drops those scoring
below the deploy config's ``post_processing.score_threshold``. mmdet's RPN
(``RPNHead._bbox_post_process``) runs the NMS level by level
(``batched_nms`` with the level as the class) and keeps every score. A
proposal that a larger box of another level suppresses in mmdeploy's graph
survives in mmdet's, and the second stage refines other boxes: on the demo's
trained Mask R-CNN 10 of 59 detections moved by 1-6 px (IoU 0.90-0.98).

Here the RPN keeps mmdet's algorithm: per level, the ``nms_pre`` best
anchors (as mmdeploy does), decoded together; mmdet's ``min_bbox_size``
filter (boxes that clipping to the image leaves this narrow or narrower are
no proposals; mmdeploy keeps them, and with ``min_bbox_size=0`` they are
the boxes without width or height, e.g. those that the clipping moved onto
the border: a random-weight MobileViG-M Mask R-CNN had 284 of 1000); then
mmdeploy's multi-class NMS with the level as the class (a box's score in
its level's column, -1 in the others, so that it is never selected twice;
-1 everywhere for a filtered box) and mmdet's ``max_per_img``; no score
threshold.

Second stage. mmdeploy's rewrite of ``BBoxHead.predict_by_feat``
(``mmdeploy/codebase/mmdet/models/roi_heads/bbox_head.py``) keeps, per RoI,
only the box regressed for its best class and runs every class's NMS on
those boxes; mmdet's ``multiclass_nms`` gives each class its own regressed
box. A RoI that scores for a second class yields that detection with the
wrong box (on a stand-in COCO Mask R-CNN, 133 of 300 detections above 0.01
moved). Here each (RoI, class) pair is a box of its own, with its score in
its class's column (-1 in the others), through mmdeploy's multi-class NMS
with the test_cfg's ``score_thr``, IoU and ``max_per_img`` (mmdet has no
per-class cap: ``max_per_img`` is one). The graph holds RoIs x classes^2
scores (6.4 M for 1000 RoIs and 80 classes).
"""
import torch
from mmdeploy.codebase.mmdet.deploy import gather_topk
from mmdeploy.core import FUNCTION_REWRITER
from mmdeploy.mmcv.ops import multiclass_nms


@FUNCTION_REWRITER.register_rewriter(
    func_name='mmdet.models.dense_heads.rpn_head.RPNHead.predict_by_feat',
    backend='onnxruntime')
def rpn_head__predict_by_feat__per_level_nms(self, cls_scores, bbox_preds,
                                             batch_img_metas=None, cfg=None,
                                             rescale=False, with_nms=True,
                                             **kwargs):
    """mmdet's RPN proposals, ``(dets (N, K, 5), labels (N, K))``: the
    ``labels`` are the levels."""
    cfg = self.test_cfg if cfg is None else cfg
    levels = len(cls_scores)
    anchors = self.anchor_generator.grid_anchors(
        [score.shape[-2:] for score in cls_scores],
        device=cls_scores[0].device)
    batch = cls_scores[0].shape[0]
    pre_topk = cfg.get('nms_pre', -1)
    all_scores, all_deltas, all_anchors, all_levels = [], [], [], []
    for level, (cls_score, bbox_pred, priors) in enumerate(
            zip(cls_scores, bbox_preds, anchors)):
        cls_score = cls_score.permute(0, 2, 3, 1)
        if self.use_sigmoid_cls:
            scores = cls_score.reshape(batch, -1).sigmoid()
        else:  # background last (mmdet >= 2.5)
            scores = cls_score.reshape(batch, -1, 2).softmax(-1)[..., 0]
        scores = scores.unsqueeze(-1)
        deltas = bbox_pred.permute(0, 2, 3, 1).reshape(
            batch, -1, self.bbox_coder.encode_size)
        priors = priors.unsqueeze(0)
        if pre_topk > 0:  # mmdeploy's topk rewrite caps k at the size
            _, inds = scores.squeeze(-1).topk(pre_topk)
            deltas, scores = gather_topk(deltas, scores, inds=inds,
                                         batch_size=batch, is_batched=True)
            priors = gather_topk(priors, inds=inds, batch_size=batch,
                                 is_batched=False)
        all_scores.append(scores)
        all_deltas.append(deltas)
        all_anchors.append(priors)
        all_levels.append(torch.full_like(scores, level))
    bboxes = self.bbox_coder.decode(
        torch.cat(all_anchors, 1), torch.cat(all_deltas, 1),
        max_shape=batch_img_metas[0]['img_shape'])
    scores = torch.cat(all_scores, 1)
    if not with_nms:
        return bboxes, scores
    own = torch.cat(all_levels, 1) == torch.arange(
        levels, device=scores.device, dtype=scores.dtype)
    per_level = torch.where(own, scores, scores.new_full((1, ), -1.))
    min_size = cfg.get('min_bbox_size', -1)
    if min_size >= 0:  # mmdet drops the boxes this small before the NMS
        wh = bboxes[..., 2:] - bboxes[..., :2]
        valid = (wh > min_size).all(-1, keepdim=True)
        per_level = torch.where(valid, per_level, per_level.new_full((1, ),
                                                                     -1.))
    return multiclass_nms(
        bboxes, per_level, cfg.max_per_img,
        nms_type=cfg.nms.get('type'),
        iou_threshold=cfg.nms.iou_threshold, score_threshold=0.,
        pre_top_k=-1, keep_top_k=cfg.max_per_img)


@FUNCTION_REWRITER.register_rewriter(
    func_name='mmdet.models.roi_heads.bbox_heads.bbox_head.BBoxHead.'
    'predict_by_feat',
    backend='onnxruntime')
def bbox_head__predict_by_feat__own_class_boxes(self, rois, cls_scores,
                                                bbox_preds, batch_img_metas,
                                                rcnn_test_cfg=None,
                                                rescale=False):
    """mmdet's second-stage detections, ``(dets (N, K, 5), labels (N,
    K))``: each class's NMS on the boxes regressed for that class."""
    from mmdeploy.codebase.mmdet.models.roi_heads.bbox_head import \
        bbox_head__predict_by_feat as mmdeploy_predict
    if self.reg_class_agnostic or bbox_preds is None or \
            self.custom_cls_channels:  # one box per RoI: mmdeploy's is exact
        return mmdeploy_predict(self, rois, cls_scores, bbox_preds,
                                batch_img_metas, rcnn_test_cfg, rescale)
    classes = self.num_classes
    scores = cls_scores.softmax(-1)[..., :classes]
    batch = scores.shape[0]
    bboxes = self.bbox_coder.decode(
        rois[..., 1:], bbox_preds,
        max_shape=batch_img_metas[0]['img_shape'])
    bboxes = bboxes.reshape(batch, -1, 4)  # (N, RoIs * classes, 4)
    own = torch.eye(classes, dtype=torch.bool, device=scores.device)
    per_class = torch.where(own, scores.unsqueeze(-1),
                            scores.new_full((1, ), -1.))
    per_class = per_class.reshape(batch, -1, classes)
    return multiclass_nms(
        bboxes, per_class, rcnn_test_cfg.max_per_img,
        nms_type=rcnn_test_cfg.nms.get('type'),
        iou_threshold=rcnn_test_cfg.nms.iou_threshold,
        score_threshold=rcnn_test_cfg.score_thr, pre_top_k=-1,
        keep_top_k=rcnn_test_cfg.max_per_img)
