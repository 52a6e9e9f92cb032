"""Emotional-speech corpora the voice reader learns from, as one list of labelled utterances.

RAVDESS (actors 1-20 here, North-American English), TESS (2 Canadian speakers) and Berlin EmoDB (10 German
speakers), read from ``../shared/data`` (formats in its README, sections 1, 5, 6). Labels are mapped to one scheme:
the reader's 7 emotions (:data:`VOICE_EMOTIONS`; RAVDESS "calm" counts as neutral, EmoDB "bored" has no emotion
class but a valence and an arousal), valence (section 8 of that README) and arousal (low / high, where the
circumplex is clear; disgust has none).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from crossemo_core.errors import DataError
from crossemo_core.readers.reading import EMOTION_AROUSAL, EMOTION_VALENCE

VOICE_EMOTIONS = ("angry", "disgust", "fearful", "happy", "sad", "surprised", "neutral")
"""The voice reader's emotion classes, in output order (the names the face reader uses too)."""
CORPORA = ("ravdess", "tess", "emodb")
RAVDESS_EMOTIONS = {1: "neutral", 2: "calm", 3: "happy", 4: "sad", 5: "angry", 6: "fearful", 7: "disgust",
                    8: "surprised"}
RAVDESS_DUPLICATES = frozenset({"03-01-03-01-02-02-07"})
"""Byte-identical copies of another take (shared data README 1.1); dropped so every utterance is independent."""


@dataclass(frozen=True)
class Utterance:
    """One labelled recording. ``speaker`` is unique across corpora (``"ravdess:07"``); ``emotion`` is the
    corpus's own label in RAVDESS-style names (``calm`` and ``bored`` included)."""

    path: Path
    corpus: str
    speaker: str
    emotion: str

    @property
    def key(self) -> str:
        return f"{self.corpus}:{self.path.stem}"

    @property
    def emotion_index(self) -> int:
        """Index in :data:`VOICE_EMOTIONS`, or -1 for an emotion the reader has no class for (bored)."""
        name = "neutral" if self.emotion == "calm" else self.emotion
        return VOICE_EMOTIONS.index(name) if name in VOICE_EMOTIONS else -1

    @property
    def valence(self) -> int:
        return EMOTION_VALENCE[self.emotion]

    @property
    def arousal(self) -> int:
        """0 low, 1 high, -1 none (disgust)."""
        return EMOTION_AROUSAL.get(self.emotion, -1)

    @property
    def is_neutral(self) -> bool:
        return self.emotion == "neutral"


def ravdess_actor(u: Utterance) -> int:
    return int(u.speaker.split(":")[1])


def _ravdess(root: Path) -> list[Utterance]:
    out = []
    for path in sorted((root / "audio").glob("Actor_*/03-01-*.flac")):
        fields = path.stem.split("-")
        if path.stem in RAVDESS_DUPLICATES:
            continue
        out.append(Utterance(path, "ravdess", f"ravdess:{fields[6]}", RAVDESS_EMOTIONS[int(fields[2])]))
    return out


def _from_labels(root: Path, corpus: str) -> list[Utterance]:
    table = pd.read_csv(root / "labels.csv", dtype={"speaker": str})
    return [Utterance(root / row.file, corpus, f"{corpus}:{row.speaker}", row.emotion)
            for row in table.itertuples(index=False)]


def list_corpus(corpus: str, data_root: str | Path) -> list[Utterance]:
    """Every utterance of ``corpus`` under ``data_root`` (the folder holding ``ravdess/``, ``tess/``, ``emodb/``)."""
    if corpus not in CORPORA:
        raise DataError(f"unknown voice corpus {corpus!r}; known: {', '.join(CORPORA)}.")
    root = Path(data_root) / corpus
    if not root.is_dir():
        raise DataError(f"{root} does not exist; the voice corpora live in ../shared/data (see its README).")
    found = _ravdess(root) if corpus == "ravdess" else _from_labels(root, corpus)
    if not found:
        raise DataError(f"no utterances found under {root}.")
    return found


def list_corpora(data_root: str | Path, corpora: tuple[str, ...] = CORPORA) -> list[Utterance]:
    return [u for c in corpora for u in list_corpus(c, data_root)]
