"""The face reader's benchmark rows (``benchmark --suite readers``): FER2013 PublicTest (7 classes, the data's own
test split) and CK+48 (posed faces of 118 subjects, never seen in training), read as the shipped reader reads them."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from crossemo_core.clip.expression import FER_TO_VALENCE
from crossemo_core.readers.face import FACE_EMOTIONS, FaceReader
from crossemo_core.readers.reading import VALENCES, unweighted_average_recall


def _row(test: str, readings: Any, emotion_true: np.ndarray, valence_true: np.ndarray,
         keep: np.ndarray | None = None) -> dict[str, Any]:
    keep = np.ones(len(emotion_true), bool) if keep is None else keep
    pred = readings.emotions.argmax(1)
    return {"test": test, "n": int(len(valence_true)),
            "accuracy": float(np.mean(pred[keep] == emotion_true[keep])),
            "emotion_uar": unweighted_average_recall(emotion_true[keep], pred[keep], len(FACE_EMOTIONS)),
            "valence_uar": unweighted_average_recall(valence_true, readings.valence.argmax(1), len(VALENCES))}


def face_rows(data_root: str | Path, reader: FaceReader | None = None) -> list[dict[str, Any]]:
    """FER2013 PublicTest and CK+48 rows (test, n, 7-class or 6-class accuracy, emotion UAR, valence UAR)."""
    root = Path(data_root)
    reader = reader or FaceReader.load(with_landmarker=False)
    rows = []
    fer = np.load(root / "fer2013" / "fer2013.npz")
    test = fer["usage"].astype(str) == "PublicTest"
    labels = fer["labels"][test].astype(np.int64)  # FER codes 0..6 = FACE_EMOTIONS order
    rows.append(_row("FER2013 PublicTest (7 classes)", reader.read_crops(fer["images"][test], use_blendshapes=False),
                     labels, FER_TO_VALENCE[labels]))
    ck = np.load(root / "ckplus" / "ckplus48.npz")
    emotions = ck["emotions"].astype(str)
    keep = emotions != "contempt"  # not a FER2013 class: scored in valence only (negative)
    emotion_true = np.array([FACE_EMOTIONS.index(e) if e in FACE_EMOTIONS else -1 for e in emotions])
    valence_true = np.array([VALENCES.index(v) for v in ck["valences"].astype(str)])
    rows.append(_row("CK+48, unseen dataset (6 emotions; contempt in valence only)",
                     reader.read_crops(ck["images"], use_blendshapes=False), emotion_true, valence_true, keep))
    return rows
