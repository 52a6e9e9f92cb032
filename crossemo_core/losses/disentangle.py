"""Constraints of common/private ("disentangled") representations: MISA (its seed 003/004 lineage) and FDMER (004).

- :func:`central_moment_discrepancy` (MISA's L_sim): distance between the batch distributions of two sets of common
  representations, matching their means and central moments up to order ``n_moments``.
- :func:`soft_orthogonality` (MISA's L_diff): ``||A^T B||_F^2`` of the column-centred, row-normalised
  representations, pushing common and private parts of a modality apart.
- :func:`hsic` (FDMER's disparity constraint, eq. 6, inner-product kernel): dependence of two sets of private
  representations, ``(n - 1)^-2 tr(U K_1 U K_2)``.

All take ``(B, E)`` batches and return a scalar tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor


def central_moment_discrepancy(x: Tensor, y: Tensor, n_moments: int = 5) -> Tensor:
    """CMD of two ``(B, E)`` batches: ``||mean_x - mean_y|| + sum_{k=2..K} ||E(x - mean_x)^k - E(y - mean_y)^k||``."""
    mx, my = x.mean(0), y.mean(0)
    cx, cy = x - mx, y - my
    total = (mx - my).norm()
    for k in range(2, n_moments + 1):
        total = total + ((cx ** k).mean(0) - (cy ** k).mean(0)).norm()
    return total


def soft_orthogonality(a: Tensor, b: Tensor) -> Tensor:
    """MISA's difference loss: mean of the squared entries of ``A^T B`` for centred, L2-row-normalised (B, E)."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-6)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(1e-6)
    return ((a.T @ b) ** 2).mean()


def hsic(x: Tensor, y: Tensor) -> Tensor:
    """HSIC with inner-product kernels of two ``(n, E)`` batches, ``(n - 1)^-2 tr(U K_x U K_y)``, n >= 2."""
    n = x.shape[0]
    centre = torch.eye(n, dtype=x.dtype, device=x.device) - 1.0 / n
    kx, ky = x @ x.T, y @ y.T
    return torch.trace(centre @ kx @ centre @ ky) / (n - 1) ** 2
