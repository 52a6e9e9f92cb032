"""The one optimiser step every network of the project takes (the detector networks in :mod:`crossemo_core.training`,
the voice reader's CNN, the face expression CNN): clear the gradients, back-propagate, clip, step."""
from __future__ import annotations

from typing import Iterable

import torch


def optimiser_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   parameters: Iterable[torch.nn.Parameter] | None = None, grad_clip: float = 0.0) -> None:
    """One step on ``loss`` (a scalar tensor); with ``grad_clip > 0`` the gradient norm of ``parameters`` is clipped
    to it first."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0 and parameters is not None:
        torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
    optimizer.step()
