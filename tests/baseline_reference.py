"""Slow loop references for the baseline losses, written directly from the seed papers' formulas.

One Python loop over anchors (and over positives / negatives where the formula sums over them); sets built from
label lists; shares no code with crossemo_core and is differentiable, so tests compare values and gradients.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def _value(t: Tensor) -> float:
    return float(t.detach())


def cos(a: Tensor, b: Tensor) -> Tensor:
    return (a @ b) / (a.norm() * b.norm())


def _directions(face: Tensor, voice: Tensor, y_face: list[int], y_voice: list[int], cross: bool):
    """(anchors, partners, anchor labels, partner labels, exclude self) for the two directions."""
    if cross:
        return [(face, voice, y_face, y_voice, False), (voice, face, y_voice, y_face, False)]
    return [(face, face, y_face, y_face, True), (voice, voice, y_voice, y_voice, True)]


def _sets(i: int, ya: list[int], yp: list[int], exclude_self: bool) -> tuple[list[int], list[int]]:
    pos = [k for k in range(len(yp)) if yp[k] == ya[i] and not (exclude_self and k == i)]
    neg = [j for j in range(len(yp)) if yp[j] != ya[i]]
    return pos, neg


def ref_quintuple(face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor, gamma0: float, gamma: float,
                  mining: str) -> Tensor:
    """TN-BCL eqs. 12/16/21/25 with eq. 28's structure, mean over anchors having a positive and a negative."""
    yf, yv = y_face.tolist(), y_voice.tolist()
    total = face.new_zeros(())
    for cross in (True, False):
        for anchors, partners, ya, yp, excl in _directions(face, voice, yf, yv, cross):
            terms = []
            for i in range(len(ya)):
                pos, neg = _sets(i, ya, yp, excl)
                if not pos or not neg:
                    continue
                s_pos = [cos(anchors[i], partners[k]) for k in pos]
                s_neg = [cos(anchors[i], partners[j]) for j in neg]
                if mining == "hard":
                    sp, sn = min(s_pos, key=_value), max(s_neg, key=_value)
                else:
                    sp, sn = max(s_pos, key=_value), min(s_neg, key=_value)
                terms.append((gamma0 - sp) + torch.clamp(sn - gamma, min=0))
            if terms:
                total = total + sum(terms) / len(terms)
    return total


def ref_structured_triplet(face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor, margin: float,
                           intra_weight: float) -> Tensor:
    """CMAD-style: mean over all valid (anchor, positive, negative) triplets per direction, cross + w * intra."""
    yf, yv = y_face.tolist(), y_voice.tolist()
    parts = {}
    for cross in (True, False):
        total = face.new_zeros(())
        for anchors, partners, ya, yp, excl in _directions(face, voice, yf, yv, cross):
            terms = []
            for i in range(len(ya)):
                pos, neg = _sets(i, ya, yp, excl)
                for k in pos:
                    for j in neg:
                        terms.append(torch.clamp(margin + cos(anchors[i], partners[j])
                                                 - cos(anchors[i], partners[k]), min=0))
            if terms:
                total = total + sum(terms) / len(terms)
        parts[cross] = total
    return parts[True] + intra_weight * parts[False]


def softplus_hinge(x: Tensor, t: float) -> Tensor:
    return t * torch.log1p(torch.exp(x / t))


def ref_soft_margin(face: Tensor, voice: Tensor, y_face: Tensor, y_voice: Tensor, margin: float, t: float) -> Tensor:
    """NCR-style: normal pair i's own partner is the positive, the hardest other-class partner the negative."""
    yf, yv = y_face.tolist(), y_voice.tolist()
    total = face.new_zeros(())
    for anchors, partners, ya, yp, _ in _directions(face, voice, yf, yv, True):
        terms = []
        for i in range(len(ya)):
            neg = [j for j in range(len(yp)) if yp[j] != ya[i]]
            if yf[i] != yv[i] or not neg:
                continue
            sn = max((cos(anchors[i], partners[j]) for j in neg), key=_value)
            terms.append(softplus_hinge(margin + sn - cos(anchors[i], partners[i]), t))
        if terms:
            total = total + sum(terms) / len(terms)
    return total


def ref_bank_loss(face: Tensor, voice: Tensor, bank_face: Tensor, bank_voice: Tensor, margin: float, t: float,
                  exclude: list[int]) -> Tensor:
    out = []
    for i in range(len(face)):
        own = cos(face[i], voice[i])
        to_v = max((cos(face[i], bank_voice[j]) for j in range(len(bank_voice)) if j != exclude[i]), key=_value)
        to_f = max((cos(voice[i], bank_face[j]) for j in range(len(bank_face)) if j != exclude[i]), key=_value)
        out.append(softplus_hinge(margin + to_v - own, t) + softplus_hinge(margin + to_f - own, t))
    return torch.stack(out)


def ref_hycon(face: Tensor, voice: Tensor, face_logits: Tensor, voice_logits: Tensor, y_face: Tensor,
              y_voice: Tensor, alpha: float) -> dict[str, Tensor]:
    """HyCon eqs. 6-12 with s = (1 + cos) / 2; IEMCL without each anchor's own partner; SCL on normal pairs."""
    yf, yv = y_face.tolist(), y_voice.tolist()
    n = len(yf)

    def s(a: Tensor, b: Tensor) -> Tensor:
        return (1 + cos(a, b)) / 2

    def part(cross: bool, target: float) -> Tensor:
        total = face.new_zeros(())
        for anchors, partners, ya, yp, _ in _directions(face, voice, yf, yv, cross):
            terms = []
            for i in range(n):
                pos = [k for k in range(n) if yp[k] == ya[i] and k != i]
                neg = [j for j in range(n) if yp[j] != ya[i] and j != i]
                if not pos or not neg:
                    continue
                sp = [s(anchors[i], partners[k]) for k in pos]
                sn = [s(anchors[i], partners[j]) for j in neg]
                ratio = sum(sp) / (sum(sp) + sum(sn))
                refine = sum((v - target) ** 2 for v in sp) / len(sp)
                terms.append(refine - ratio)
            if terms:
                total = total + sum(terms) / len(terms)
        return total

    normal = [i for i in range(n) if yf[i] == yv[i]]
    scl = sum((s(face[i], voice[i]) - alpha) ** 2 for i in normal) / max(len(normal), 1)
    share = face_logits.new_zeros(())
    for logits, labels in ((face_logits, yf), (voice_logits, yv)):
        share = share + sum(torch.logsumexp(logits[i], 0) - logits[i, labels[i]] for i in range(n)) / n
    return {"share": share, "intra": part(False, 1.0), "inter": part(True, alpha), "scl": scl}


def ref_hsic(x: Tensor, y: Tensor) -> float:
    n = x.shape[0]
    kx = [[float(x[i] @ x[j]) for j in range(n)] for i in range(n)]
    ky = [[float(y[i] @ y[j]) for j in range(n)] for i in range(n)]

    def centred(k: list[list[float]]) -> list[list[float]]:
        row = [sum(r) / n for r in k]
        col = [sum(k[i][j] for i in range(n)) / n for j in range(n)]
        every = sum(row) / n
        return [[k[i][j] - row[i] - col[j] + every for j in range(n)] for i in range(n)]

    cx, cy = centred(kx), centred(ky)
    return math.fsum(cx[i][j] * cy[j][i] for i in range(n) for j in range(n)) / (n - 1) ** 2
