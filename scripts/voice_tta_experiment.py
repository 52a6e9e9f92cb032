"""Experiment: does reading each utterance in several tempo / pitch versions and averaging help the voice reader?

    OMP_NUM_THREADS=1 python scripts/voice_tta_experiment.py --data ../shared/data   # -> docs/readers_voice_tta.json

Test-time augmentation for the voice: the reader (both views, as shipped) reads the recording as it is and in
versions made with librosa (``time_stretch`` at tempo 0.9 / 1.1, ``pitch_shift`` by +-1 and +-2 semitones, the
transforms the training augmentation draws from), and the versions' valence probabilities are averaged. Two readers,
each on speakers it never trained on:

- ``voice_reader.pt`` (shipped; trained on RAVDESS 1-14, TESS, EmoDB 03-14): its validation speakers (RAVDESS
  15-17, EmoDB 15-16; where a choice would be made) and its test actors (RAVDESS 18-20);
- ``voice_reader_external.pt`` (TESS + EmoDB 03-14): its validation speakers (EmoDB 15-16) and every RAVDESS
  utterance (the leave-RAVDESS-out test).

3-class valence UAR per version and per average; about 15 min for both readers on one core. Only aggregate numbers
are written.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.readers import loco_split, ravdess_actor_split  # noqa: E402
from crossemo_core.paths import REPO, atomic_write  # noqa: E402
from crossemo_core.readers.reading import VALENCES, unweighted_average_recall  # noqa: E402
from crossemo_core.readers.voice import VoiceReader  # noqa: E402
from crossemo_core.readers.voice_corpora import Utterance, list_corpora  # noqa: E402
from crossemo_core.readers.voice_training import load_signal  # noqa: E402

RATE = 16000


def versions() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    import librosa

    def stretch(rate: float) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: librosa.effects.time_stretch(x, rate=rate)

    def shift(steps: float) -> Callable[[np.ndarray], np.ndarray]:
        return lambda x: librosa.effects.pitch_shift(x, sr=RATE, n_steps=steps)

    return {"as recorded": lambda x: x, "tempo 0.9": stretch(0.9), "tempo 1.1": stretch(1.1),
            "pitch -1": shift(-1), "pitch +1": shift(1), "pitch -2": shift(-2), "pitch +2": shift(2)}


AVERAGES = {"tempo 0.9 / 1 / 1.1": ["as recorded", "tempo 0.9", "tempo 1.1"],
            "pitch -1 / 0 / +1": ["as recorded", "pitch -1", "pitch +1"],
            "pitch -2 / 0 / +2": ["as recorded", "pitch -2", "pitch +2"],
            "tempo and pitch +-1 (5 versions)": ["as recorded", "tempo 0.9", "tempo 1.1", "pitch -1", "pitch +1"],
            "all 7 versions": None}


def sets(reader: str, utts: list[Utterance]) -> dict[str, list[Utterance]]:
    """The reader's validation and test speakers: the benchmark's own splits (``crossemo_core.benchmark.readers``)."""
    if reader == "voice_reader":
        split = ravdess_actor_split(utts)
        return {"validation speakers (RAVDESS 15-17, EmoDB 15-16)": split.valid,
                "test: RAVDESS actors 18-20": split.test}
    split = loco_split(utts, "ravdess")
    return {"validation speakers (EmoDB 15-16)": split.valid, "test: RAVDESS actors 1-20": split.test}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="the folder holding ravdess/, tess/, emodb/")
    p.add_argument("--out", type=Path, default=REPO / "docs" / "readers_voice_tta.json")
    args = p.parse_args()
    utts = list_corpora(args.data)
    made = versions()
    result: dict[str, dict] = {}
    for name in ("voice_reader", "voice_reader_external"):
        reader = VoiceReader.load(REPO / "checkpoints" / f"{name}.pt")
        result[name] = {}
        for label, group in sets(name, utts).items():
            y = np.array([u.valence for u in group])
            signals = [load_signal(u.path) for u in group]
            probs = {}
            for version, make in made.items():
                readings = reader.read_many([make(s).astype(np.float32) for s in signals])
                probs[version] = np.array([[r.valence[v] for v in VALENCES] for r in readings])
            uar = {v: unweighted_average_recall(y, pr.argmax(1), 3) for v, pr in probs.items()}
            for average, members in AVERAGES.items():
                mean = np.mean([probs[v] for v in (members or list(made))], axis=0)
                uar[f"mean of {average}"] = unweighted_average_recall(y, mean.argmax(1), 3)
            result[name][label] = {"n": len(group), "valence_uar": {k: round(float(v), 4) for k, v in uar.items()}}
            print(name, label, json.dumps(result[name][label]["valence_uar"]), flush=True)
    atomic_write(args.out, json.dumps({"command": "python " + " ".join(sys.argv), "readers": result},
                                      indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
