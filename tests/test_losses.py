"""Vectorised SIR-HCL losses against the loop reference, degenerate batches, switches, validation and the miner."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loss_reference as ref  # noqa: E402

from crossemo_core.errors import DataError  # noqa: E402
from crossemo_core.losses import (  # noqa: E402
    CrossModalLoss,
    HardSampleLoss,
    HardSampleMiner,
    HybridContrastiveLoss,
    IntraModalLoss,
    SharedEmbeddingLoss,
    cosine_similarity_matrix,
    cross_modal_masks,
    cross_modal_similarity,
    exp_similarity,
    intra_modal_masks,
    intra_modal_similarity,
    label_pair_masks,
)

TOL = 1e-5
DIM = 16
C = 3


def make_batch(batch: int, seed: int, y_face: list[int] | None = None, y_voice: list[int] | None = None) -> dict:
    """float64 embeddings and logits that require grad; labels random (about half the pairs abnormal) unless given."""
    gen = torch.Generator().manual_seed(seed)
    if y_face is None:
        y_face_t = torch.randint(0, C, (batch,), generator=gen)
        flip = torch.rand(batch, generator=gen) < 0.5
        y_voice_t = torch.where(flip, torch.randint(0, C, (batch,), generator=gen), y_face_t)
    else:
        y_face_t, y_voice_t = torch.tensor(y_face), torch.tensor(y_voice)
    n_classes = int(max(y_face_t.max(), y_voice_t.max())) + 1 if batch else C

    def leaf(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, dtype=torch.float64).requires_grad_(True)

    return {
        "face": leaf(batch, DIM),
        "voice": leaf(batch, DIM),
        "face_logits": leaf(batch, max(n_classes, C)),
        "voice_logits": leaf(batch, max(n_classes, C)),
        "y_face": y_face_t,
        "y_voice": y_voice_t,
    }


def grads(value: torch.Tensor, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
    return list(torch.autograd.grad(value, inputs, allow_unused=True, materialize_grads=True))


def assert_matches(fast: torch.Tensor, slow: torch.Tensor, inputs: list[torch.Tensor]) -> None:
    """Same value and same gradients w.r.t. inputs, all finite."""
    assert torch.isfinite(fast), fast
    torch.testing.assert_close(fast, slow.to(fast.dtype), atol=TOL, rtol=TOL)
    for g_fast, g_slow in zip(grads(fast, inputs), grads(slow, inputs)):
        assert torch.isfinite(g_fast).all()
        torch.testing.assert_close(g_fast, g_slow, atol=TOL, rtol=TOL)


def component_pairs(b: dict, k: int, tau: float, mode: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(vectorised, reference) for every component on batch b."""
    emb = (b["face"], b["voice"], b["y_face"], b["y_voice"])
    pairs = HardSampleMiner(k)(*emb)
    return {
        "share": (
            SharedEmbeddingLoss()(b["face_logits"], b["voice_logits"], b["y_face"], b["y_voice"]),
            ref.ref_share(b["face_logits"], b["voice_logits"], b["y_face"], b["y_voice"]),
        ),
        "intra": (IntraModalLoss(tau)(*emb), ref.ref_intra(*emb, tau)),
        "cross": (CrossModalLoss(tau)(*emb), ref.ref_cross(*emb, tau)),
        "hard": (HardSampleLoss(mode, tau)(b["face"], b["voice"], pairs), ref.ref_hard(*emb, k, tau, mode)),
    }


DEGENERATE = {
    "all_same_class": ([1, 1, 1, 1, 1], [1, 1, 1, 1, 1]),
    "all_distinct_normal": ([0, 1, 2, 3], [0, 1, 2, 3]),
    "all_distinct_abnormal": ([0, 1, 2, 3], [1, 2, 3, 0]),
    "modalities_disjoint": ([0, 0, 0, 0], [1, 1, 1, 1]),
    "single_normal": ([2], [2]),
    "single_abnormal": ([0], [1]),
    "pair_same_face": ([0, 0], [1, 2]),
}


# ---------------------------------------------------------------- agreement with the loop reference
@pytest.mark.parametrize("mode", ["bce", "literal"])
@pytest.mark.parametrize(("k", "tau"), [(1, 1.0), (6, 0.3)])
@pytest.mark.parametrize("batch", [1, 2, 3, 10])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_components_match_reference(seed: int, batch: int, k: int, tau: float, mode: str) -> None:
    b = make_batch(batch, seed)
    inputs = [b["face"], b["voice"], b["face_logits"], b["voice_logits"]]
    for fast, slow in component_pairs(b, k, tau, mode).values():
        assert_matches(fast, slow, inputs)


@pytest.mark.parametrize("mode", ["bce", "literal"])
@pytest.mark.parametrize("batch", [1, 2, 9, 24])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_total_matches_reference(seed: int, batch: int, mode: str) -> None:
    b = make_batch(batch, seed)
    lambdas, k, tau = (0.7, 1.3, 0.5), 4, 0.5
    loss = HybridContrastiveLoss(*lambdas, k=k, tau=tau, hard_loss=mode)
    out = loss(b["face"], b["voice"], b["face_logits"], b["voice_logits"], b["y_face"], b["y_voice"])
    slow = ref.ref_total(
        b["face"], b["voice"], b["face_logits"], b["voice_logits"], b["y_face"], b["y_voice"], lambdas, k, tau, mode
    )
    inputs = [b["face"], b["voice"], b["face_logits"], b["voice_logits"]]
    for name in ("share", "intra", "cross", "hard"):
        torch.testing.assert_close(getattr(out, name), slow[name], atol=TOL, rtol=TOL)
    assert_matches(out.total, slow["total"], inputs)


@pytest.mark.parametrize("mode", ["bce", "literal"])
@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_degenerate_batches_match_reference_and_stay_finite(case: str, mode: str) -> None:
    y_face, y_voice = DEGENERATE[case]
    b = make_batch(len(y_face), seed=3, y_face=y_face, y_voice=y_voice)
    inputs = [b["face"], b["voice"], b["face_logits"], b["voice_logits"]]
    for fast, slow in component_pairs(b, 6, 1.0, mode).values():
        assert_matches(fast, slow, inputs)
    out = HybridContrastiveLoss(hard_loss=mode)(
        b["face"], b["voice"], b["face_logits"], b["voice_logits"], b["y_face"], b["y_voice"]
    )
    out.total.backward()
    for t in inputs:
        assert t.grad is not None and torch.isfinite(t.grad).all()


def test_terms_without_contributing_anchors_are_connected_zeros() -> None:
    # Every sample its own class in both modalities and every pair abnormal: no intra positive anywhere, and the
    # modalities share no class, so no cross positive either.
    b = make_batch(4, seed=0, y_face=[0, 1, 2, 3], y_voice=[4, 5, 6, 7])
    emb = (b["face"], b["voice"], b["y_face"], b["y_voice"])
    for value in (IntraModalLoss()(*emb), CrossModalLoss()(*emb)):
        assert value.item() == 0.0 and value.requires_grad
        for g in grads(value, [b["face"], b["voice"]]):
            assert torch.equal(g, torch.zeros_like(g))
    literal = HardSampleLoss("literal")(b["face"], b["voice"], HardSampleMiner(6)(*emb))
    assert literal.item() == 0.0 and literal.requires_grad


def test_all_zero_embedding_gives_finite_loss_and_gradients() -> None:
    # The residual block ends in a ReLU, so an all-zero embedding can occur.
    b = make_batch(6, seed=4)
    with torch.no_grad():
        b["face"][0].zero_()
        b["voice"][2].zero_()
    out = HybridContrastiveLoss()(b["face"], b["voice"], b["face_logits"], b["voice_logits"], b["y_face"], b["y_voice"])
    out.total.backward()
    assert all(torch.isfinite(t) for t in out)
    assert torch.isfinite(b["face"].grad).all() and torch.isfinite(b["voice"].grad).all()


def test_float32_and_exp_similarity() -> None:
    b = make_batch(8, seed=5)
    face, voice = b["face"].detach().float(), b["voice"].detach().float()
    cos = cosine_similarity_matrix(face, voice)
    assert cos.shape == (8, 8) and cos.dtype == torch.float32
    torch.testing.assert_close(cos, torch.nn.functional.cosine_similarity(face[:, None], voice[None], dim=2))
    torch.testing.assert_close(exp_similarity(cos, 0.5), torch.exp(2 * cos))
    out = HybridContrastiveLoss()(face, voice, b["face_logits"].float(), b["voice_logits"].float(),
                                  b["y_face"], b["y_voice"])
    assert out.total.dtype == torch.float32 and torch.isfinite(out.total)


# ---------------------------------------------------------------- switches and validation
def test_disabled_terms_are_zero_and_left_out_of_total() -> None:
    b = make_batch(12, seed=6)
    args = (b["face"], b["voice"], b["face_logits"], b["voice_logits"], b["y_face"], b["y_voice"])
    lambdas = {"share": 1.0, "intra": 0.7, "cross": 1.3, "hard": 0.5}
    full = HybridContrastiveLoss(lambdas["intra"], lambdas["cross"], lambdas["hard"])(*args)
    for off in lambdas:
        out = HybridContrastiveLoss(lambdas["intra"], lambdas["cross"], lambdas["hard"], **{f"use_{off}": False})(*args)
        assert getattr(out, off).item() == 0.0
        for name in lambdas:
            if name != off:
                torch.testing.assert_close(getattr(out, name), getattr(full, name))
        torch.testing.assert_close(out.total, full.total - lambdas[off] * getattr(full, off))
        out.total.backward()


def test_logits_optional_only_without_share() -> None:
    b = make_batch(5, seed=7)
    emb = (b["face"], b["voice"])
    out = HybridContrastiveLoss(use_share=False)(*emb, None, None, b["y_face"], b["y_voice"])
    assert out.share.item() == 0.0
    with pytest.raises(DataError, match="face_logits and voice_logits are required"):
        HybridContrastiveLoss()(*emb, None, None, b["y_face"], b["y_voice"])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, r"k \(hard samples per anchor\) must be an integer >= 1, got 0"),
        ({"k": 2.5}, r"k \(hard samples per anchor\) must be an integer >= 1, got 2.5"),
        ({"tau": 0.0}, r"tau must be a finite number > 0, got 0.0"),
        ({"tau": -1.0}, r"tau must be a finite number > 0, got -1.0"),
        ({"tau": float("nan")}, r"tau must be a finite number > 0, got nan"),
        ({"lambda_intra": -0.1}, r"lambda_intra must be a finite number >= 0, got -0.1"),
        ({"lambda_cross": float("inf")}, r"lambda_cross must be a finite number >= 0, got inf"),
        ({"lambda_hard": -1}, r"lambda_hard must be a finite number >= 0, got -1"),
        ({"hard_loss": "triplet"}, r"hard_loss must be one of \('bce', 'literal'\), got 'triplet'"),
        (
            {"use_share": False, "use_intra": False, "use_cross": False, "use_hard": False},
            r"at least one of use_share, use_intra, use_cross, use_hard must be True",
        ),
    ],
)
def test_invalid_parameters_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HybridContrastiveLoss(**kwargs)


def test_components_validate_alone() -> None:
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        IntraModalLoss(tau=0)
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        CrossModalLoss(tau=-2)
    with pytest.raises(ValueError, match="hard_loss must be one of"):
        HardSampleLoss("sum")
    with pytest.raises(ValueError, match=r"k \(hard samples per anchor\) must be an integer >= 1"):
        HardSampleMiner(True)


def test_mismatched_batch_raises() -> None:
    b = make_batch(4, seed=8)
    loss = HybridContrastiveLoss()
    with pytest.raises(DataError, match=r"face and voice embeddings must both have shape \(B, D\)"):
        loss(b["face"], b["voice"][:3], b["face_logits"], b["voice_logits"], b["y_face"], b["y_voice"])
    with pytest.raises(DataError, match=r"y_face and y_voice must have shape \(4,\)"):
        loss(b["face"], b["voice"], b["face_logits"], b["voice_logits"], b["y_face"][:2], b["y_voice"])


# ---------------------------------------------------------------- the hard-sample miner
@pytest.mark.parametrize("k", [1, 2, 6, 40])
@pytest.mark.parametrize("seed", [0, 1])
def test_miner_picks_lowest_positives_and_highest_negatives(seed: int, k: int) -> None:
    b = make_batch(24, seed)
    hard = HardSampleMiner(k)(b["face"], b["voice"], b["y_face"], b["y_voice"])
    cos = cross_modal_similarity(b["face"], b["voice"]).detach()
    masks = cross_modal_masks(b["y_face"], b["y_voice"])
    assert hard.pos.shape == hard.neg.shape == (2, 24, 24)
    assert not (hard.pos & ~masks.pos).any() and not (hard.neg & ~masks.neg).any()
    torch.testing.assert_close(hard.pos.sum(-1), masks.pos.sum(-1).clamp(max=k))
    torch.testing.assert_close(hard.neg.sum(-1), masks.neg.sum(-1).clamp(max=k))
    expected = [
        ref.ref_hard_pairs(b["face"], b["voice"], b["y_face"], b["y_voice"], k),
        ref.ref_hard_pairs(b["voice"], b["face"], b["y_voice"], b["y_face"], k),
    ]
    for d in range(2):  # direction axis: 0 face anchors over voices, 1 voice anchors over faces
        for i, (exp_pos, exp_neg) in enumerate(expected[d]):
            assert set(hard.pos[d, i].nonzero().flatten().tolist()) == set(exp_pos)
            assert set(hard.neg[d, i].nonzero().flatten().tolist()) == set(exp_neg)
            rest_pos, rest_neg = masks.pos[d, i] & ~hard.pos[d, i], masks.neg[d, i] & ~hard.neg[d, i]
            if hard.pos[d, i].any() and rest_pos.any():
                assert cos[d, i][hard.pos[d, i]].max() <= cos[d, i][rest_pos].min()
            if hard.neg[d, i].any() and rest_neg.any():
                assert cos[d, i][hard.neg[d, i]].min() >= cos[d, i][rest_neg].max()


def test_miner_is_not_differentiated_and_literal_ignores_negatives() -> None:
    b = make_batch(10, seed=9)
    hard = HardSampleMiner(3)(b["face"], b["voice"], b["y_face"], b["y_voice"])
    assert not hard.pos.requires_grad and not hard.neg.requires_grad
    # Literal eq. 13: y = 0 on hard negatives, so only voices in a hard positive pair (as partner or anchor) get a
    # gradient.
    value = HardSampleLoss("literal")(b["face"], b["voice"], hard)
    (g_voice,) = grads(value, [b["voice"]])
    touched = hard.pos[0].any(0) | hard.pos[1].any(1)
    assert torch.equal(g_voice[~touched], torch.zeros_like(g_voice[~touched]))


def test_stacked_similarities_and_masks_follow_the_direction_axis() -> None:
    b = make_batch(7, seed=10)
    face, voice, y_face, y_voice = b["face"].detach(), b["voice"].detach(), b["y_face"], b["y_voice"]
    cross, intra = cross_modal_similarity(face, voice), intra_modal_similarity(face, voice)
    torch.testing.assert_close(cross[0], cosine_similarity_matrix(face, voice))
    torch.testing.assert_close(cross[1], cross[0].T)
    torch.testing.assert_close(intra[0], cosine_similarity_matrix(face))
    torch.testing.assert_close(intra[1], cosine_similarity_matrix(voice))
    cm, im = cross_modal_masks(y_face, y_voice), intra_modal_masks(y_face, y_voice)
    assert torch.equal(cm.pos[0], y_face[:, None] == y_voice[None, :]) and torch.equal(cm.pos[1], cm.pos[0].T)
    assert torch.equal(cm.neg, ~cm.pos)
    assert torch.equal(im.pos[0], label_pair_masks(y_face, y_face, exclude_self=True).pos)
    assert not im.pos.diagonal(dim1=-2, dim2=-1).any() and not im.neg.diagonal(dim1=-2, dim2=-1).any()
