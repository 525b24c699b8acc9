"""Converting a whole model to its inference (deploy) form."""
import torch.nn as nn


def switch_to_deploy(model: nn.Module) -> nn.Module:
    """Convert ``model`` to its inference form in place: call
    ``switch_to_deploy()`` on every submodule that has one and is not
    deployed yet (MobileViG backbones and head, MobileOne, RepVGG, ...).
    Outputs in eval mode are unchanged.

    Args:
        model (nn.Module): Any model.

    Returns:
        nn.Module: ``model`` itself.
    """
    for module in list(model.modules()):
        if hasattr(module, 'switch_to_deploy') and not getattr(
                module, 'deploy', False):
            module.switch_to_deploy()
    return model
