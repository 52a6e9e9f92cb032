"""Per-emotion prior shifts on the face reader's probabilities: would they lift its valence UAR? Writes
``docs/readers_face_bias.json`` (aggregates only).

    OMP_NUM_THREADS=1 python scripts/face_bias_experiment.py --data ../shared/data

The shipped stacker reads neutral faces poorly (PublicTest valence recall 0.555; most of the rest are read as
negative). A shift ``b`` (one log-weight per emotion, neutral's fixed at 0) multiplies each emotion's probability by
``exp(b)`` and renormalises, so the emotions and the valence summed from them stay one reading. ``b`` is chosen on
the validation split the stacker was chosen on (FER2013 Training rows held out of the network,
``train_face_reader.validation_split``), on out-of-fold probabilities of the stacker's own recipe (its 5 folds, L2
and class weighting), by coordinate search over [-1, 1] in steps of 0.1 (four sweeps), for two objectives: the
stacker's selection score ((7-class accuracy + valence UAR) / 2) and valence UAR alone. PublicTest (the shipped
stacker, with flip TTA, float network) is read once per objective, for nothing but the numbers.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from crossemo_core.paths import atomic_write_text  # noqa: E402
from crossemo_core.readers.face import FACE_EMOTIONS, FaceReader, LogisticHead  # noqa: E402
from train_face_reader import N_FOLDS, load_fer2013, scores, selection_score, validation_split  # noqa: E402

GRID = np.round(np.linspace(-1.0, 1.0, 21), 2)
SWEEPS = 4


def shifted(p: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, 7)`` probabilities times ``exp(b)`` per emotion (``b``: 6 shifts, neutral's is 0), renormalised."""
    q = p * np.exp(np.append(b, 0.0))
    return q / q.sum(axis=1, keepdims=True)


def coordinate_search(objective: Callable[[np.ndarray], float]) -> np.ndarray:
    """The 6 shifts maximising ``objective``: each shift in turn set to its best grid value, ``SWEEPS`` times."""
    b = np.zeros(len(FACE_EMOTIONS) - 1)
    for _ in range(SWEEPS):
        for j in range(len(b)):
            values = []
            for v in GRID:
                trial = b.copy()
                trial[j] = v
                values.append(objective(trial))
            b[j] = GRID[int(np.argmax(values))]
    return b


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "readers_face_bias.json")
    args = ap.parse_args()
    torch.set_num_threads(1)

    images, labels, usage = load_fer2013(args.data)
    _, valid = validation_split(usage, 0)
    test = np.flatnonzero(usage == "PublicTest")
    reader = FaceReader.load(with_landmarker=False, int8=False)
    meta = reader.stacker.meta
    logits_valid, y_valid = reader.logits(images[valid]), labels[valid]
    folds = np.random.default_rng(0).permutation(len(y_valid)) % N_FOLDS  # the stacker's own folds
    out_of_fold = np.zeros((len(y_valid), len(FACE_EMOTIONS)))
    for k in range(N_FOLDS):
        head = LogisticHead.fit(logits_valid[folds != k], y_valid[folds != k], 7, meta["l2"], meta["class_power"])
        out_of_fold[folds == k] = head.predict_proba(logits_valid[folds == k])
    p_test = reader.stacker.predict_proba(reader.logits(images[test]), None)
    y_test = labels[test]

    def rounded(s: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 4) for k, v in s.items()}

    report = {"command": "OMP_NUM_THREADS=1 python scripts/face_bias_experiment.py --data ../shared/data",
              "grid": [float(GRID[0]), float(GRID[-1]), 0.1], "sweeps": SWEEPS,
              "shipped": {"validation_out_of_fold": rounded(scores(y_valid, out_of_fold)),
                          "publictest": rounded(scores(y_test, p_test))},
              "shifted": {}}
    objectives = {"selection score": lambda s: selection_score(s), "valence UAR": lambda s: s["valence_uar"]}
    for name, of_scores in objectives.items():
        b = coordinate_search(lambda trial: of_scores(scores(y_valid, shifted(out_of_fold, trial))))
        report["shifted"][name] = {
            "shift": {e: float(v) for e, v in zip(FACE_EMOTIONS, np.append(b, 0.0))},
            "validation_out_of_fold": rounded(scores(y_valid, shifted(out_of_fold, b))),
            "publictest": rounded(scores(y_test, shifted(p_test, b)))}
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
