"""Slow reference for the SIR-HCL losses, written directly from the paper (eqs. 3-18) and notes/method.md.

One Python loop over anchors; the sets P and N are Python lists built from the labels; every term is the plain
formula (s = exp(cos / tau), -log(sum_P s / (sum_P s + sum_N s)), ...). It shares no code with crossemo_core and is
differentiable, so tests compare values and gradients, and benchmarks/bench_losses.py times it.
"""

from __future__ import annotations

import torch
from torch import Tensor

PROB_CLIP = 1e-6


def cos_to_all(anchor: Tensor, partners: Tensor) -> Tensor:
    """cos(anchor, partner_k) for every k: anchor (D,), partners (M, D) -> (M,)."""
    return (partners @ anchor) / (partners.norm(dim=1) * anchor.norm())


def ref_share(face_logits: Tensor, voice_logits: Tensor, y_face: Tensor, y_voice: Tensor) -> Tensor:
    """Eq. 3: mean CE of the face logits plus mean CE of the voice logits."""
    total = face_logits.new_zeros(())
    for logits, labels in ((face_logits, y_face), (voice_logits, y_voice)):
        ce = [torch.log(torch.exp(logits[i]).sum()) - logits[i, int(labels[i])] for i in range(len(labels))]
        total = total + sum(ce) / len(ce)
    return total


def _contrastive_direction(
    anchors: Tensor, partners: Tensor, y_anchor: list[int], y_partner: list[int], tau: float, exclude_self: bool
) -> Tensor:
    terms = []
    for i in range(len(y_anchor)):
        pos = [k for k in range(len(y_partner)) if y_partner[k] == y_anchor[i] and not (exclude_self and k == i)]
        neg = [j for j in range(len(y_partner)) if y_partner[j] != y_anchor[i]]
        if not pos or not neg:
            continue
        s = torch.exp(cos_to_all(anchors[i], partners) / tau)
        s_pos = s[pos].sum()
        terms.append(-torch.log(s_pos / (s_pos + s[neg].sum())))
    return sum(terms) / len(terms) if terms else anchors.sum() * 0.0


def ref_intra(face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor, tau: float = 1.0) -> Tensor:
    """Eqs. 5-7: P = {k != i, same label}, N = {j, other label}, within each modality."""
    yf, yv = y_face.tolist(), y_voice.tolist()
    face_part = _contrastive_direction(face, face, yf, yf, tau, exclude_self=True)
    return face_part + _contrastive_direction(voice, voice, yv, yv, tau, exclude_self=True)


def ref_cross(face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor, tau: float = 1.0) -> Tensor:
    """Eqs. 8-10: face anchors against voice partners and voice anchors against face partners."""
    yf, yv = y_face.tolist(), y_voice.tolist()
    face_part = _contrastive_direction(face, voice, yf, yv, tau, exclude_self=False)
    return face_part + _contrastive_direction(voice, face, yv, yf, tau, exclude_self=False)


def ref_hard_pairs(
    anchors: Tensor, partners: Tensor, y_anchor: Tensor, y_partner: Tensor, k: int
) -> list[tuple[list[int], list[int]]]:
    """Eqs. 11-12 for one direction: per anchor, (k positives of lowest cos, k negatives of highest cos)."""
    ya, yp = y_anchor.tolist(), y_partner.tolist()
    mined = []
    for i in range(len(ya)):
        cos = cos_to_all(anchors[i].detach(), partners.detach()).tolist()
        pos = [w for w in range(len(yp)) if yp[w] == ya[i]]
        neg = [w for w in range(len(yp)) if yp[w] != ya[i]]
        mined.append((sorted(pos, key=lambda w: cos[w])[:k], sorted(neg, key=lambda w: -cos[w])[:k]))
    return mined


def _hard_direction(
    anchors: Tensor, partners: Tensor, y_anchor: Tensor, y_partner: Tensor, k: int, tau: float, mode: str
) -> Tensor:
    losses = []
    for i, (hard_pos, hard_neg) in enumerate(ref_hard_pairs(anchors, partners, y_anchor, y_partner, k)):
        cos = cos_to_all(anchors[i], partners)
        if mode == "literal":
            # Eq. 13 as printed: -sum y log s, y = 1 for hard positives and 0 for hard negatives.
            losses += [-torch.log(torch.exp(cos[w] / tau)) for w in hard_pos]
        else:
            prob = torch.clamp((1 + cos) / 2, PROB_CLIP, 1 - PROB_CLIP)
            losses += [-torch.log(prob[w]) for w in hard_pos] + [-torch.log(1 - prob[w]) for w in hard_neg]
    return sum(losses) / len(losses) if losses else anchors.sum() * 0.0


def ref_hard(
    face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor, k: int = 6, tau: float = 1.0, mode: str = "bce"
) -> Tensor:
    """Eqs. 13-17 in the reading of notes/method.md ("bce") or as printed ("literal")."""
    return _hard_direction(face, voice, y_face, y_voice, k, tau, mode) + _hard_direction(
        voice, face, y_voice, y_face, k, tau, mode
    )


def ref_total(
    face: Tensor,
    voice: Tensor,
    face_logits: Tensor,
    voice_logits: Tensor,
    y_face: Tensor,
    y_voice: Tensor,
    lambdas: tuple[float, float, float] = (1.0, 1.0, 0.5),
    k: int = 6,
    tau: float = 1.0,
    mode: str = "bce",
) -> dict[str, Tensor]:
    """Eq. 18 with every term; returns {"total", "share", "intra", "cross", "hard"}."""
    terms = {
        "share": ref_share(face_logits, voice_logits, y_face, y_voice),
        "intra": ref_intra(face, voice, y_face, y_voice, tau),
        "cross": ref_cross(face, voice, y_face, y_voice, tau),
        "hard": ref_hard(face, voice, y_face, y_voice, k, tau, mode),
    }
    terms["total"] = (
        terms["share"] + lambdas[0] * terms["intra"] + lambdas[1] * terms["cross"] + lambdas[2] * terms["hard"]
    )
    return terms
