"""Deployment: the networks the export tools write (:mod:`.models`), ONNX
export and its check against PyTorch (:mod:`.onnx`), Core ML
(:mod:`.coreml`), ExecuTorch (:mod:`.executorch`) and OpenVINO
(:mod:`.openvino`) in float and 8-bit (calibration images:
:mod:`.calibration`), whole detectors and segmentors through mmdeploy
(:mod:`.end2end`), every runtime side by side (:mod:`.runtimes`), how
right a runtime's predictions are (:mod:`.accuracy`), and counting
parameters and MACs (:mod:`.analysis`).

A library: nothing here reads a command line (``tools/deployment/`` and
``tools/analysis_tools/`` do, with :mod:`mvig2_mm.cli.export`). The ONNX,
onnxruntime, Core ML, ExecuTorch, OpenVINO and mmdeploy packages are
imported only by the functions that need them (``pip install -e
.[deploy]``).
"""
from .analysis import count
from .models import (DenseHeadOutputs, Logits, SegLogits, StageMaps,
                     build_export_model, detections_from_outputs, exportable,
                     output_names)
from .onnx import DYNAMIC_CHECKS, MIN_DYNAMIC_SIZE, TOLERANCE, export, verify

__all__ = [
    'count', 'DenseHeadOutputs', 'Logits', 'SegLogits', 'StageMaps',
    'build_export_model', 'detections_from_outputs', 'exportable',
    'output_names', 'DYNAMIC_CHECKS', 'MIN_DYNAMIC_SIZE', 'TOLERANCE',
    'export', 'verify'
]
