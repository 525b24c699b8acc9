"""Converting a whole model to its inference (deploy) form."""
import torch.nn as nn

from .fused_kernels import enable_fused_kernels


def switch_to_deploy(model: nn.Module,
                     fused_kernels: bool = True) -> nn.Module:
    """Convert ``model`` to its inference form in place: call
    ``switch_to_deploy()`` on every submodule that has one and is not
    deployed yet (MobileViGv2 backbone and head, MobileOne, RepVGG, ...),
    then turn the fused CPU kernels on or off for the whole model
    (:func:`~mvig2_mm.models.utils.fused_kernels.enable_fused_kernels`).

    Args:
        model (nn.Module): Any model.
        fused_kernels (bool): Run the folded convolutions on oneDNN's fused
            kernels in float32 CPU inference. Defaults to True.

    Returns:
        nn.Module: ``model`` itself.
    """
    for module in list(model.modules()):
        if hasattr(module, 'switch_to_deploy') and not getattr(
                module, 'deploy', False):
            module.switch_to_deploy()
    return enable_fused_kernels(model, fused_kernels)
