"""What a constant (DC) offset in a recording does to the voice reader, with and without the DC blocker.

    OMP_NUM_THREADS=1 python scripts/voice_dc_offset.py --data ../shared/data --out docs/voice_dc_offset.json

Every RAVDESS speech take of actors 18-20 (the shipped reader's test speakers; FLAC, no codec) is read whole
(``VoiceReader.read_recording``, as a clip's voice is) with a constant offset of 0, 0.5, 2 and 5 % of full scale
added, two ways: as every recording enters the project now (offset added to the file's samples, then
:func:`~crossemo_core.features.voice.remove_dc`, as ``load_audio``, the corpora's ``load_signal`` and the clip
decoder do) and as it entered before the blocker (offset left in). Per offset and way it prints and writes the
3-class valence UAR, the mean and largest change of a take's three valence probabilities against the same way's
reading without offset, and how many takes change their top valence. Nothing is trained.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.cache import json_safe  # noqa: E402
from crossemo_core.features.voice import file_sha256, remove_dc  # noqa: E402
from crossemo_core.paths import CHECKPOINTS, REPO, atomic_write  # noqa: E402
from crossemo_core.readers.reading import unweighted_average_recall  # noqa: E402
from crossemo_core.readers.voice import RATE, VoiceReader  # noqa: E402
from crossemo_core.readers.voice_corpora import list_corpus, ravdess_actor  # noqa: E402

ACTORS = (18, 19, 20)
OFFSETS = (0.0, 0.005, 0.02, 0.05)
WAYS = {"with the DC blocker": lambda x: remove_dc(x, RATE), "without (before)": lambda x: x}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding ravdess/")
    p.add_argument("--reader", type=Path, default=CHECKPOINTS / "voice_reader.pt")
    p.add_argument("--out", type=Path, help="JSON file for the results")
    args = p.parse_args()
    started = time.perf_counter()
    takes = [u for u in list_corpus("ravdess", args.data) if ravdess_actor(u) in ACTORS]
    reader = VoiceReader.load(args.reader)
    truth = np.array([u.valence for u in takes])
    raw = []
    for u in takes:
        x, sr = sf.read(u.path, dtype="float32", always_2d=True)
        assert sr == RATE, f"{u.path} is at {sr} Hz"
        raw.append(x.mean(axis=1))
    rows = []
    for way, entry in WAYS.items():
        reads = {offset: np.array([reader.read_recording(entry(x + offset)).valence_array() for x in raw])
                 for offset in OFFSETS}
        for offset, p_valence in reads.items():
            change = np.abs(p_valence - reads[0.0]).max(axis=1)
            predicted = p_valence.argmax(axis=1)
            rows.append({"way": way, "offset": offset,
                         "valence_uar": unweighted_average_recall(truth, predicted, 3),
                         "mean_change": float(change.mean()), "largest_change": float(change.max()),
                         "top_valence_changed": int((predicted != reads[0.0].argmax(axis=1)).sum())})
            r = rows[-1]
            print(f"{way:20s} offset {offset * 100:4.1f} % of full scale: valence UAR {r['valence_uar']:.3f}, "
                  f"change mean {r['mean_change']:.3f} largest {r['largest_change']:.3f}, top valence changed in "
                  f"{r['top_valence_changed']} of {len(takes)}", flush=True)
    if args.out:
        summary = {"what": __doc__.split("\n\n")[0], "command": "python " + " ".join(sys.argv),
                   "reader": {"path": os.path.relpath(args.reader.resolve(), REPO), "sha256": file_sha256(args.reader)},
                   "takes": len(takes), "actors": list(ACTORS), "rows": rows,
                   "seconds": round(time.perf_counter() - started, 1)}
        atomic_write(args.out, json.dumps(json_safe(summary), indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
