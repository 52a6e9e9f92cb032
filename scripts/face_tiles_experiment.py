"""How small a face does the face tracker find, with and without its tiled search? FER2013 PublicTest faces (half B)
drawn ``px`` pixels wide at random places on grey frames of several sizes; per setting, how many of 20 frames the
detectors find a face in the whole frame, in the tiles of :attr:`FaceAnalyzer.TILE_GRID` grid, and how many
:meth:`FaceAnalyzer.analyse` (both, then the mesh) reads, with the median crop scale (frame pixels per crop pixel)
and the time of one tiled search. Writes ``docs/face_tiles.json``.

    python scripts/face_tiles_experiment.py --data ../shared/data
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crossemo_core.clip import corpus, synth  # noqa: E402
from crossemo_core.clip.face import FaceAnalyzer  # noqa: E402
from crossemo_core.paths import atomic_write_text  # noqa: E402

SETTINGS = (((240, 320), (40, 48, 60)), ((360, 480), (48, 60)), ((480, 640), (60, 80)), ((720, 1280), (80, 120)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "face_tiles.json")
    args = ap.parse_args()
    pool = corpus.fer_pools(args.data / "fer2013" / "fer2013.npz")["heldout"]
    analyser = FaceAnalyzer()
    rows = []
    for (h, w), sizes in SETTINGS:
        for px in sizes:
            rng = np.random.default_rng(0)
            whole = tiles = read = 0
            seconds, scales = [], []
            for _ in range(args.frames):
                face = pool.images[int(rng.integers(len(pool.images)))]
                rgb = synth.place((h, w), face, px, rng.uniform(0.2, 0.8) * w, rng.uniform(0.25, 0.75) * h,
                                  background=110)
                whole += bool(analyser.detect(rgb))
                t0 = time.perf_counter()
                tiles += bool(analyser.detect_in_tiles(rgb))
                seconds.append(time.perf_counter() - t0)
                frame = analyser.analyse(0.0, rgb, still=True)
                read += frame.crop is not None
                if frame.face_scale is not None:
                    scales.append(frame.face_scale)
            rows.append({"frame": f"{w}x{h}", "face_px": px, "frames": args.frames, "found_in_whole_frame": whole,
                         "found_in_tiles": tiles, "read": read,
                         "median_crop_scale": round(float(np.median(scales)), 3) if scales else None,
                         "tiled_search_ms": round(1000 * float(np.median(seconds)), 1)})
            print(json.dumps(rows[-1]), flush=True)
    analyser.close()
    report = {"what": "FER2013 PublicTest half B faces drawn on grey frames: found by the face tracker in the whole "
                      "frame and in its tiles (aggregates only)",
              "command": "python scripts/face_tiles_experiment.py --data ../shared/data", "tile_grid":
              FaceAnalyzer.TILE_GRID, "tile_overlap": FaceAnalyzer.TILE_OVERLAP, "rows": rows}
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
