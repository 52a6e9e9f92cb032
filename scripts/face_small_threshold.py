"""Where should the small-face network take over? Both face networks (argmax with flip averaging) on the validation
split (3,000 FER2013 Training rows neither network trained on) with each face shrunk to 48, 44, 40, 36, 32 and 28
pixels and enlarged back. Writes ``docs/readers_face_small_threshold.json``; the crop scale is side / 48.

    OMP_NUM_THREADS=1 python scripts/face_small_threshold.py --data ../shared/data

The choice it informs: :data:`crossemo_core.readers.face.SMALL_FACE_SCALE`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from crossemo_core.clip.expression import FER_SIZE, ExpressionModel, softmax  # noqa: E402
from crossemo_core.paths import atomic_write_text  # noqa: E402
from crossemo_core.readers.face import DEFAULT_EXPRESSION, DEFAULT_SMALL_EXPRESSION  # noqa: E402
from train_face_reader import load_fer2013, scores, through_sides, validation_split  # noqa: E402

SIDES = (48, 44, 40, 36, 32, 28)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "readers_face_small_threshold.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    images, labels, usage = load_fer2013(args.data)
    _, valid = validation_split(usage, 0)
    networks = {"main": ExpressionModel.load(DEFAULT_EXPRESSION, int8=False),
                "small_face": ExpressionModel.load(DEFAULT_SMALL_EXPRESSION, int8=False)}
    rows = []
    for side in SIDES:
        faces = images[valid] if side == FER_SIZE else through_sides(images[valid], np.full(len(valid), side))
        rows.append({"side_px": side, "crop_scale": round(side / FER_SIZE, 4),
                     **{name: {k: round(v, 4) for k, v in scores(labels[valid], softmax(
                         net.mirrored_logits(faces))).items()} for name, net in networks.items()}})
        print(json.dumps(rows[-1]), flush=True)
    report = {"what": "main and small-face networks (argmax, flip-averaged) on the FER2013 validation split, faces "
                      "shrunk and enlarged back; aggregates only",
              "command": "OMP_NUM_THREADS=1 python scripts/face_small_threshold.py --data ../shared/data",
              "rows": rows}
    atomic_write_text(args.out, json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
