"""Helpers for tests and the demo (as ``mmdet.testing``): small synthetic
datasets in the COCO, ADE20K and ImageNet layouts, generated on the spot.
Run one as ``python -m mvig2_mm.testing.synthetic_coco OUT_DIR``."""
