"""Voice feature speed: seconds per clip for the extractor (and pyin for reference), and a cold vs cached RAVDESS load.

    python benchmarks/bench_voice_features.py [--clips 40] [--actors 1 2] [--workers 1] [--pyin 3]

Uses ``shared/data/ravdess`` (override with CROSSEMO_SHARED_DATA); prints a note and exits 0 when it is absent.
The cold load writes to a temporary cache folder that is removed afterwards.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crossemo_core.data.loaders.ravdess import load_ravdess  # noqa: E402
from crossemo_core.features.voice import VoiceFeatureExtractor, load_audio  # noqa: E402

SHARED = Path(os.environ.get("CROSSEMO_SHARED_DATA")
              or Path(__file__).resolve().parents[1].parent / "shared" / "data")
RAVDESS = SHARED / "ravdess"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=40, help="clips timed for the extractor")
    ap.add_argument("--actors", type=int, nargs="+", default=[1, 2], help="actors for the cold/cached load")
    ap.add_argument("--workers", type=int, default=1, help="processes for the cold load")
    ap.add_argument("--pyin", type=int, default=3, help="clips timed with librosa.pyin (0 to skip)")
    args = ap.parse_args()
    if not (RAVDESS / "face_au.csv").is_file():
        print(f"skipped: RAVDESS not found at {RAVDESS} (set CROSSEMO_SHARED_DATA)")
        return 0
    import librosa

    every = sorted(RAVDESS.glob("audio/Actor_*/*.flac"))
    files = every[:: max(1, len(every) // args.clips)][: args.clips]  # spread over actors and emotions
    extractor = VoiceFeatureExtractor()
    signals = [load_audio(f) for f in files]
    extractor.extract(*signals[0])  # warm-up (imports, numba compilation)
    seconds = []
    for x, sr in signals:
        start = time.perf_counter()
        extractor.extract(x, sr)
        seconds.append(time.perf_counter() - start)
    audio_s = np.array([len(x) / sr for x, sr in signals])
    rows = [("extract (yin + periodicity voicing)", f"{np.mean(seconds):.3f}",
             f"{np.sum(seconds) / audio_s.sum():.4f}", f"{len(files)} clips, mean {audio_s.mean():.2f} s")]
    if args.pyin:
        t_pyin = []
        for x, sr in signals[: args.pyin]:
            start = time.perf_counter()
            librosa.pyin(x, fmin=65, fmax=600, sr=sr, frame_length=1024, hop_length=160)
            t_pyin.append(time.perf_counter() - start)
        rows.append(("librosa.pyin alone (reference)", f"{np.mean(t_pyin):.3f}",
                     f"{np.sum(t_pyin) / audio_s[: args.pyin].sum():.4f}", f"{len(t_pyin)} clips"))

    with tempfile.TemporaryDirectory(prefix="crossemo-bench-") as cache:
        n = 0
        for label in ("cold", "cached"):
            start = time.perf_counter()
            data = load_ravdess(RAVDESS, actors=args.actors, cache_dir=cache, workers=args.workers)
            elapsed = time.perf_counter() - start
            n = len(data)
            rows.append((f"load_ravdess {label} (actors {args.actors}, {args.workers} proc.)",
                         f"{elapsed / n:.4f}", "", f"{n} clips in {elapsed:.2f} s"))

    width = max(len(r[0]) for r in rows)
    print(f"{'step':<{width}}  {'s/clip':>8}  {'s/audio s':>9}  note")
    for name, per_clip, per_audio, note in rows:
        print(f"{name:<{width}}  {per_clip:>8}  {per_audio:>9}  {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
