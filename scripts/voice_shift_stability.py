"""How much a 100 ms shift of the audio moves the voice reader's valence, and what it reads, on unseen actors.

    OMP_NUM_THREADS=1 python scripts/voice_shift_stability.py --data ../shared/data \\
        --readers checkpoints/voice_reader.pt [OTHER.pt ...] --out docs/voice_shift_stability.json

Every RAVDESS speech take of actors 15-20 (15-17: the reader's validation speakers, 18-20: its test speakers; FLAC,
no codec) is read whole (``VoiceReader.read_recording``, as a clip's voice is) three times: as recorded, 100 ms
early (its first 100 ms cut, silence appended) and 100 ms late (silence prepended, its last 100 ms cut). Per reader
it prints and writes the checkpoint's sha256, the largest change of a take's three valence probabilities under
either shift, the 95th percentile, how many takes move by more than 0.05 (the clip verdict's stability goal is
stated on the verdict, not on the reader, but the reader's moves are what reach it), the take that moves most, every
take that moves by more than 0.02 (by name), and the 3-class valence UAR per actor group. Nothing is trained.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.cache import json_safe  # noqa: E402
from crossemo_core.clip.synth import shifted  # noqa: E402
from crossemo_core.features.voice import file_sha256  # noqa: E402
from crossemo_core.paths import atomic_write  # noqa: E402
from crossemo_core.readers.reading import unweighted_average_recall  # noqa: E402
from crossemo_core.readers.voice import RATE, VoiceReader  # noqa: E402
from crossemo_core.readers.voice_corpora import list_corpus, ravdess_actor  # noqa: E402
from crossemo_core.readers.voice_training import load_signal  # noqa: E402

GROUPS = {"actors 15-17": (15, 16, 17), "actors 18-20": (18, 19, 20)}


def measure(reader: VoiceReader, takes: list, shift_s: float) -> dict:
    """Valence UAR per group and the largest change of each take's valence probabilities under +-``shift_s``."""
    moved, predicted = [], []
    for u in takes:
        signal = load_signal(u.path)
        reads = [reader.read_recording(s).valence_array()
                 for s in (signal, shifted(signal, -shift_s, RATE), shifted(signal, shift_s, RATE))]
        moved.append(max(float(np.abs(reads[0] - r).max()) for r in reads[1:]))
        predicted.append(int(reads[0].argmax()))
    moved_arr, predicted_arr = np.array(moved), np.array(predicted)
    truth = np.array([u.valence for u in takes])
    actors = np.array([ravdess_actor(u) for u in takes])
    worst = int(moved_arr.argmax())
    return {"takes": len(takes), "largest_change": float(moved_arr.max()),
            "p95_change": float(np.quantile(moved_arr, 0.95)), "mean_change": float(moved_arr.mean()),
            "takes_over_0.05": int((moved_arr > 0.05).sum()), "worst_take": takes[worst].path.stem,
            "changes_over_0.02": {u.path.stem: round(float(m), 3) for u, m in zip(takes, moved_arr) if m > 0.02},
            "valence_uar": {name: unweighted_average_recall(truth[np.isin(actors, group)],
                                                           predicted_arr[np.isin(actors, group)], 3)
                            for name, group in GROUPS.items()}}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding ravdess/")
    p.add_argument("--readers", type=Path, nargs="+", required=True, help="voice reader checkpoints to compare")
    p.add_argument("--shift-ms", type=float, default=100.0)
    p.add_argument("--out", type=Path, help="JSON file for the results")
    args = p.parse_args()
    wanted = {a for group in GROUPS.values() for a in group}
    takes = [u for u in list_corpus("ravdess", args.data) if ravdess_actor(u) in wanted]
    results = {}
    for path in args.readers:
        r = {"sha256": file_sha256(path), **measure(VoiceReader.load(path), takes, args.shift_ms / 1000)}
        results[str(path)] = r
        uar = ", ".join(f"{k} {v:.3f}" for k, v in r["valence_uar"].items())
        print(f"{path}: valence UAR {uar}; +-{args.shift_ms:.0f} ms: largest change {r['largest_change']:.3f} "
              f"({r['worst_take']}), p95 {r['p95_change']:.3f}, {r['takes_over_0.05']} of {r['takes']} takes "
              f"over 0.05", flush=True)
    if args.out:
        summary = {"command": "python " + " ".join(sys.argv), "readers": results}
        atomic_write(args.out, json.dumps(json_safe(summary), indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
