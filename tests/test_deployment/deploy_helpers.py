"""What the export tests share."""
import torch

from mvig2_mm.deployment import StageMaps, accuracy
from mvig2_mm.models import MobileViGv2

#: An input size whose stage maps (12, 6 and 3 with hops 8, 4 and 2) are
#: shifted along every axis.
SIZE = 96


def deploy_backbone() -> StageMaps:
    """A deploy-form ti whose graph convolutions weigh in the outputs
    (layer scales 1, not 1e-5), so that a wrong shift shows."""
    torch.manual_seed(0)
    model = MobileViGv2('ti', layer_scale_init_value=1.0).eval()
    model.switch_to_deploy()
    return StageMaps(model).eval()


def top1_agreement(model, run, labelled) -> float:
    """How often (%) a runtime's forward ``run`` (an array to its outputs)
    and PyTorch's float ``model`` (a classifier) give a labelled image
    (:func:`~mvig2_mm.deployment.calibration.labelled_images`) the same
    class."""
    return accuracy.agreement(
        accuracy.predict(lambda x: run(x.numpy()), labelled),
        accuracy.predict(model, labelled))
