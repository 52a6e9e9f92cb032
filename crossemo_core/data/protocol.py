"""Speaker-disjoint splits and the abnormal-pair protocol of method.md.

Protocol: pick a fraction ``rate`` of the pairs of each speaker; give each picked pair ``i`` the voice of a pair
``j`` of the same speaker whose class differs (``face_label[i] != voice_label[j]``), sampled directly among such
partners; when the speaker has none, take one from another speaker and count it as a fallback. The result is a
function of (labels, speakers, rate, seed) and the chosen partners are recorded.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from crossemo_core.data.container import PairDataset
from crossemo_core.errors import DataError


@dataclass(frozen=True)
class ProtocolReport:
    """What the protocol did; saved with every split and checkpoint."""

    rate: float
    seed: int
    n_pairs: int
    n_picked: int
    n_abnormal: int
    n_fallback: int
    n_unpaired: int

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return (f"abnormal-pair protocol (rate {self.rate}, seed {self.seed}): {self.n_abnormal} of {self.n_pairs} "
                f"pairs made abnormal, {self.n_fallback} with a partner from another speaker"
                + (f", {self.n_unpaired} left normal (no different-class partner anywhere)" if self.n_unpaired else ""))


def choose_abnormal_partners(face_label: np.ndarray, voice_label: np.ndarray, speaker: np.ndarray,
                             rate: float = 0.5, seed: int = 0) -> tuple[np.ndarray, ProtocolReport]:
    """Pick voice partners. Returns ``voice_source`` ``(N,)`` (``i`` for untouched pairs) and the report."""
    if not 0.0 <= rate <= 1.0:
        raise DataError(f"abnormal rate must lie in [0, 1], got {rate}.")
    face_label = np.asarray(face_label)
    voice_label = np.asarray(voice_label)
    speaker = np.asarray(speaker).astype(str)
    n = len(face_label)
    rng = np.random.default_rng(seed)
    source = np.arange(n, dtype=np.int64)
    n_picked = n_fallback = n_unpaired = 0
    for spk in np.unique(speaker):
        members = np.flatnonzero(speaker == spk)
        n_pick = int(round(rate * len(members)))
        if n_pick == 0:
            continue
        picked = rng.choice(members, size=n_pick, replace=False)
        n_picked += n_pick
        for i in np.sort(picked):
            same_speaker = members[voice_label[members] != face_label[i]]
            if len(same_speaker):
                source[i] = rng.choice(same_speaker)
                continue
            anywhere = np.flatnonzero(voice_label != face_label[i])
            if len(anywhere):
                source[i] = rng.choice(anywhere)
                n_fallback += 1
            else:
                n_unpaired += 1
    report = ProtocolReport(rate=float(rate), seed=int(seed), n_pairs=n, n_picked=n_picked,
                            n_abnormal=int((face_label != voice_label[source]).sum()), n_fallback=n_fallback,
                            n_unpaired=n_unpaired)
    return source, report


def make_abnormal_pairs(data: PairDataset, rate: float = 0.5, seed: int = 0) -> tuple[PairDataset, ProtocolReport]:
    """Apply the protocol to a corpus (face and voice of each pair from the same clip) and return the pair set."""
    source, report = choose_abnormal_partners(data.face_label, data.voice_label, data.speaker, rate, seed)
    pairs = replace(
        data,
        face=list(data.face),
        voice=[data.voice[j] for j in source],
        face_label=data.face_label.copy(),
        voice_label=data.voice_label[source],
        speaker=data.speaker.copy(),
        clip_id=data.clip_id.copy(),
        voice_source=data.voice_source[source],
        protocol={**report.as_dict(), "voice_source": data.voice_source[source].tolist()},
        extractor=dict(data.extractor),
        voice_clip_id=data.voice_clip_id[source],
        voice_emotion=None if data.voice_emotion is None else data.voice_emotion[source],
    )
    return pairs, report


# ---------------------------------------------------------------------------------------------------- splits
def speaker_disjoint_split(speaker: np.ndarray, ratios: tuple[float, float, float] = (3, 1, 1),
                           seed: int = 0) -> dict[str, np.ndarray]:
    """Split pair indices into train/valid/test with no speaker in two parts.

    Speakers are shuffled by ``seed`` and assigned greedily so each part's share of *pairs* tracks ``ratios``.
    Every part gets at least one speaker when there are at least three.
    """
    speaker = np.asarray(speaker).astype(str)
    names, counts = np.unique(speaker, return_counts=True)
    if len(names) < 3:
        raise DataError(f"a speaker-disjoint 3-way split needs at least 3 speakers; found {len(names)}.")
    if len(ratios) != 3 or min(ratios) <= 0:
        raise DataError(f"split ratios must be three positive numbers, got {ratios}.")
    order = np.random.default_rng(seed).permutation(len(names))
    target = np.asarray(ratios, dtype=float) / float(sum(ratios)) * counts.sum()
    filled = np.zeros(3)
    assignment: dict[str, int] = {}
    for part, pos in enumerate(order[:3]):  # one speaker in each part first
        assignment[names[pos]] = part
        filled[part] += counts[pos]
    for pos in order[3:]:
        part = int(np.argmax(target - filled))
        assignment[names[pos]] = part
        filled[part] += counts[pos]
    part_of_pair = np.array([assignment[s] for s in speaker])
    return {name: np.flatnonzero(part_of_pair == k) for k, name in enumerate(("train", "valid", "test"))}


def speaker_folds(speaker: np.ndarray, n_folds: int = 5, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Speaker-disjoint cross-validation: each fold's speakers are the test part once.

    Of the remaining speakers, one fold's worth (the next fold round-robin) is the validation part, the rest train,
    which gives the 3:1:1 shape for ``n_folds = 5``.
    """
    speaker = np.asarray(speaker).astype(str)
    names = np.unique(speaker)
    if n_folds < 3 or n_folds > len(names):
        raise DataError(f"need 3 <= folds <= number of speakers ({len(names)}); got {n_folds}.")
    shuffled = names[np.random.default_rng(seed).permutation(len(names))]
    groups = [set(shuffled[k::n_folds]) for k in range(n_folds)]
    folds = []
    for k in range(n_folds):
        test, valid = groups[k], groups[(k + 1) % n_folds]
        in_test = np.isin(speaker, list(test))
        in_valid = np.isin(speaker, list(valid))
        folds.append({"train": np.flatnonzero(~in_test & ~in_valid), "valid": np.flatnonzero(in_valid),
                      "test": np.flatnonzero(in_test)})
    return folds
