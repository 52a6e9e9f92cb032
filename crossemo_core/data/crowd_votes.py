"""How people read the same clips: CREMA-D's crowd votes per modality (voice only, face only, both).

CREMA-D (Cao et al. 2014; shared data README, section 4): 7,442 clips of 91 actors, 6 intended emotions, each clip
rated by about nine people in each of three conditions: the voice alone, the face alone (silent video), and both.
Only the rating tables are here, not the recordings, so no reader of ours can read these clips; what the votes give
is a **human reference** on the task our readers and verdict do:

- how often one person (and a crowd's majority) reads the intended emotion and valence from the voice alone or the
  face alone (:func:`rater_uar`, :func:`majority_uar`);
- how well the readings rule of the verdict, ``1 - sum_v p_face(v) p_voice(v)``, separates same-clip pairs from
  pairs of one actor's face and another of that actor's clips' voice of a different intended valence (the
  abnormal-pair protocol of method.md) when the posteriors are the people's votes (:func:`crowd_pairs`).

Valence follows the shared data README's section 8 (angry, disgust, fearful, sad: negative; neutral; happy:
positive; CREMA-D has no surprise).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crossemo_core.data.protocol import choose_abnormal_partners
from crossemo_core.errors import DataError
from crossemo_core.readers.reading import EMOTION_VALENCE, VALENCES

MODALITIES = ("voice", "face", "audiovisual")
"""The rating conditions, in the order of the first digit of ``tabulatedVotes.csv``'s row id (1, 2, 3)."""
CREMA_EMOTIONS = ("angry", "disgust", "fearful", "happy", "neutral", "sad")
"""The vote options, in the order of the table's columns ``A D F H N S``."""
_VOTE_COLUMNS = ("A", "D", "F", "H", "N", "S")
_INTENDED = {"ANG": 0, "DIS": 1, "FEA": 2, "HAP": 3, "NEU": 4, "SAD": 5}
_EMOTION_TO_VALENCE = np.array([EMOTION_VALENCE[name] for name in CREMA_EMOTIONS])


@dataclass(frozen=True)
class CrowdVotes:
    """The vote counts of every clip in every condition.

    ``clip_id``, ``actor``, ``level`` (LO / MD / HI / XX): ``(N,)`` str; ``intended``: ``(N,)`` index into
    :data:`CREMA_EMOTIONS`; ``votes[modality]``: ``(N, 6)`` vote counts, columns as :data:`CREMA_EMOTIONS`."""

    clip_id: np.ndarray
    actor: np.ndarray
    level: np.ndarray
    intended: np.ndarray
    votes: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.clip_id)

    @property
    def intended_valence(self) -> np.ndarray:
        """``(N,)`` valence index (:data:`~crossemo_core.readers.reading.VALENCES`) of the intended emotion."""
        return _EMOTION_TO_VALENCE[self.intended]

    def shares(self, modality: str) -> np.ndarray:
        """``(N, 6)`` each clip's votes in ``modality`` as shares (the crowd's posterior over the emotions)."""
        return _as_shares(self._counts(modality))

    def valence_shares(self, modality: str) -> np.ndarray:
        """``(N, 3)`` the crowd's posterior over the valences (:func:`valence_posterior` of the votes)."""
        return valence_posterior(self._counts(modality))

    def _counts(self, modality: str) -> np.ndarray:  # (N, 6) vote counts
        if modality not in self.votes:
            raise DataError(f"unknown rating condition {modality!r}; choose one of {', '.join(MODALITIES)}.")
        return self.votes[modality]


def load_cremad_votes(root: str | Path) -> CrowdVotes:
    """Read ``root/tabulatedVotes.csv`` (CREMA-D's ``processedResults`` table; shared data README, section 4).

    Every clip must have one row in each of the three conditions with at least one vote; a malformed table is
    refused with one line that says where."""
    path = Path(root) / "tabulatedVotes.csv"
    if not path.is_file():
        raise DataError(f"{path}: no such file (CREMA-D's tabulatedVotes.csv; shared data README, section 4).")
    rows: dict[str, dict[str, np.ndarray]] = {}
    first_line: dict[tuple[str, str], int] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            table = csv.DictReader(handle)
            missing = [c for c in ("", "fileName", *_VOTE_COLUMNS) if c not in (table.fieldnames or ())]
            if missing:
                raise DataError(f"{path}: not CREMA-D's vote table (no column(s) {', '.join(map(repr, missing))}).")
            for row in table:
                line = table.line_num
                name, modality = _clip_name(row, path, line), _modality(row, path, line)
                if (name, modality) in first_line:
                    raise DataError(f"{path}, line {line}: clip {name} has {modality} votes on line "
                                    f"{first_line[name, modality]} already.")
                first_line[name, modality] = line
                rows.setdefault(name, {})[modality] = _vote_counts(row, path, line)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV table ({exc}).") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if not rows:
        raise DataError(f"{path}: the table has no rows.")
    names = sorted(rows)
    for name in names:
        missing = [m for m in MODALITIES if m not in rows[name]]
        if missing:
            raise DataError(f"{path}: clip {name} has no {' / '.join(missing)} votes.")
    parts = [name.split("_") for name in names]
    return CrowdVotes(clip_id=np.array(names), actor=np.array([p[0] for p in parts]),
                      level=np.array([p[3] for p in parts]),
                      intended=np.array([_INTENDED[p[2]] for p in parts], dtype=np.int64),
                      votes={m: np.stack([rows[name][m] for name in names]) for m in MODALITIES})


def _clip_name(row: dict[str, str], path: Path, line: int) -> str:
    name = (row.get("fileName") or "").strip()
    parts = name.split("_")
    if len(parts) != 4 or parts[2] not in _INTENDED:
        raise DataError(f"{path}, line {line}: clip name {name!r} is not ACTOR_SENTENCE_EMOTION_LEVEL.")
    return name


def _modality(row: dict[str, str], path: Path, line: int) -> str:
    row_id = (row.get("") or "").strip()
    if row_id[:1] not in ("1", "2", "3"):
        raise DataError(f"{path}, line {line}: row id {row_id!r} does not start with 1, 2 or 3 (the condition).")
    return MODALITIES[int(row_id[0]) - 1]


def _vote_counts(row: dict[str, str], path: Path, line: int) -> np.ndarray:
    try:
        counts = np.array([int(row[c]) for c in _VOTE_COLUMNS], dtype=np.int64)
    except (TypeError, ValueError):
        raise DataError(f"{path}, line {line}: the vote counts {_VOTE_COLUMNS} must be whole numbers.") from None
    if (counts < 0).any() or counts.sum() == 0:
        raise DataError(f"{path}, line {line}: vote counts must be non-negative with at least one vote.")
    return counts


def top_choices(shares: np.ndarray) -> np.ndarray:
    """``(N, K)`` vote shares -> ``(N, K)`` bool: the options with the most votes (several where they tie)."""
    shares = np.asarray(shares, np.float64)
    return np.isclose(shares, shares.max(1, keepdims=True))


def _as_shares(counts: np.ndarray) -> np.ndarray:
    """``(N, K)`` vote counts -> each row's share of its votes (float64)."""
    counts = np.asarray(counts, np.float64)
    return counts / counts.sum(1, keepdims=True)


def valence_posterior(counts: np.ndarray) -> np.ndarray:
    """``(N, 6)`` vote counts -> ``(N, 3)`` shares of the votes for each valence's emotions."""
    shares = _as_shares(counts)
    return np.stack([shares[:, _EMOTION_TO_VALENCE == v].sum(1) for v in range(len(VALENCES))], axis=1)


def some_raters(counts: np.ndarray, raters: int, rng: np.random.Generator) -> np.ndarray:
    """``(N, 6)`` vote counts -> the votes of ``raters`` people drawn without replacement from each clip's (all of
    them where the clip has no more)."""
    return np.stack([c if c.sum() <= raters else rng.multivariate_hypergeometric(c, raters)
                     for c in np.asarray(counts, np.int64)])


def rater_uar(shares: np.ndarray, truth: np.ndarray) -> float:
    """The unweighted average recall of **one person** picked at random among each clip's raters.

    ``shares``: ``(N, K)`` each clip's vote shares; ``truth``: ``(N,)`` class index. A class's recall is the mean,
    over its clips, of the share of votes for it; the UAR is the mean over the classes present."""
    shares, truth = np.asarray(shares, np.float64), np.asarray(truth)
    recalls = [shares[truth == c, c].mean() for c in range(shares.shape[1]) if np.any(truth == c)]
    return float(np.mean(recalls))


def majority_uar(shares: np.ndarray, truth: np.ndarray) -> float:
    """The unweighted average recall of the **crowd's majority vote** (the most-voted option of ``shares``; for
    valence, of the votes pooled over each valence's emotions), a tie split evenly among its options (the expected
    recall of a coin-flip tie-break)."""
    truth = np.asarray(truth)
    top = top_choices(shares)
    credit = top[np.arange(len(truth)), truth] / top.sum(1)
    recalls = [credit[truth == c].mean() for c in range(top.shape[1]) if np.any(truth == c)]
    return float(np.mean(recalls))


@dataclass(frozen=True)
class CrowdPairs:
    """Face/voice pairs of CREMA-D clips scored by the readings rule on the people's votes.

    ``voice_source``: ``(N,)`` the clip whose voice votes each pair takes (its own for a normal pair);
    ``abnormal``: ``(N,)`` bool, intended valences differ; ``disagreement``: ``(N,)`` ``1 - sum_v p_face(v)
    p_voice(v)`` with the crowds' valence posteriors, which is also the chance that one face rater and one voice
    rater, drawn at random, name different valences."""

    voice_source: np.ndarray
    abnormal: np.ndarray
    disagreement: np.ndarray
    n_other_actor: int
    """Abnormal pairs whose voice had to come from another actor (none had a partner of its own actor)."""


def crowd_pairs(votes: CrowdVotes, rate: float = 0.5, seed: int = 0, raters: int | None = None) -> CrowdPairs:
    """Every clip's face votes paired with its own voice votes, or (for a share ``rate`` of each actor's clips) with
    the voice votes of another of that actor's clips of a different intended valence: the abnormal-pair protocol
    (:func:`~crossemo_core.data.protocol.choose_abnormal_partners`, drawn by ``seed``) on intended valence. With
    ``raters`` the posteriors are the votes of that many people per clip and side (:func:`some_raters`, drawn by a
    generator of their own seeded by ``(seed, 1)``), else of every rater."""
    if raters is not None and raters < 1:
        raise DataError(f"raters must be at least 1, not {raters}.")
    valence = votes.intended_valence
    source, report = choose_abnormal_partners(valence, valence, votes.actor, rate, seed)
    face_votes, voice_votes = votes.votes["face"], votes.votes["voice"]
    if raters is not None:
        rng = np.random.default_rng((seed, 1))
        face_votes, voice_votes = some_raters(face_votes, raters, rng), some_raters(voice_votes, raters, rng)
    face, voice = valence_posterior(face_votes), valence_posterior(voice_votes)[source]
    return CrowdPairs(voice_source=source, abnormal=valence != valence[source],
                      disagreement=1.0 - (face * voice).sum(1), n_other_actor=report.n_fallback)


__all__ = ["CREMA_EMOTIONS", "MODALITIES", "CrowdPairs", "CrowdVotes", "crowd_pairs", "load_cremad_votes",
           "majority_uar", "rater_uar", "some_raters", "top_choices", "valence_posterior"]
