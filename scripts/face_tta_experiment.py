"""Test-time augmentation of the expression network beyond the mirrored crop: is it worth reading each face more
than twice? Writes ``docs/readers_face_tta.json`` (aggregates only).

    OMP_NUM_THREADS=1 python scripts/face_tta_experiment.py --data ../shared/data

Each FER2013 48x48 face is read as it is and mirrored (the shipped reader's flip TTA), then also shifted by 1 or 2
px along each axis and zoomed by 0.92 / 1.08 (each of those mirrored too); the network's logits are summed over the
variants of a group. Measured on the validation split the choices are made on (FER2013 Training rows held out of the
network, ``train_face_reader.validation_split``) and on PublicTest. Network only (no stacker), 7-class accuracy.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from crossemo_core.clip.expression import ExpressionModel  # noqa: E402
from crossemo_core.paths import atomic_write_text  # noqa: E402
from train_face_reader import load_fer2013, validation_split  # noqa: E402

SHIFTS_1 = ((1, 0), (-1, 0), (0, 1), (0, -1))
SHIFTS_2 = ((2, 0), (-2, 0), (0, 2), (0, -2))
ZOOMS = (0.92, 1.08)
GROUPS = {
    "as it is": [(0, 0, 1.0)],
    "flip (shipped)": [(0, 0, 1.0)],
    "flip + 1 px shifts": [(0, 0, 1.0)] + [(x, y, 1.0) for x, y in SHIFTS_1],
    "flip + 2 px shifts": [(0, 0, 1.0)] + [(x, y, 1.0) for x, y in SHIFTS_2],
    "flip + 1 and 2 px shifts": [(0, 0, 1.0)] + [(x, y, 1.0) for x, y in SHIFTS_1 + SHIFTS_2],
    "flip + zooms": [(0, 0, 1.0)] + [(0, 0, z) for z in ZOOMS],
    "flip + shifts + zooms": [(0, 0, 1.0)] + [(x, y, 1.0) for x, y in SHIFTS_1 + SHIFTS_2] + [(0, 0, z) for z in ZOOMS],
}


def warp(faces: np.ndarray, dx: int, dy: int, zoom: float) -> np.ndarray:
    """``(N, 48, 48)`` uint8 faces shifted by (dx, dy) px and zoomed about their centre, edges replicated."""
    if (dx, dy, zoom) == (0, 0, 1.0):
        return faces
    m = cv2.getRotationMatrix2D((23.5, 23.5), 0, zoom)
    m[0, 2] += dx
    m[1, 2] += dy
    return np.stack([cv2.warpAffine(f, m, (48, 48), borderMode=cv2.BORDER_REPLICATE) for f in faces])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--network", type=Path, default=REPO / "checkpoints" / "fer_expression_v2.pt")
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "readers_face_tta.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    images, labels, usage = load_fer2013(args.data)
    sets = {"validation": validation_split(usage, 0)[1], "publictest": np.flatnonzero(usage == "PublicTest")}
    model = ExpressionModel.load(args.network, int8=False)
    result = {"command": "python " + " ".join(sys.argv), "network": args.network.name, "accuracy": {}}
    for name, idx in sets.items():
        faces, truth = images[idx], labels[idx]
        logits = {}
        for variant in {v for vs in GROUPS.values() for v in vs}:
            moved = warp(faces, *variant)
            logits[variant] = (model.logits(moved), model.logits(np.ascontiguousarray(moved[:, :, ::-1])))
        result["accuracy"][name] = {}
        for group, variants in GROUPS.items():
            mirrored = group != "as it is"
            total = sum(logits[v][0] + (logits[v][1] if mirrored else 0) for v in variants)
            result["accuracy"][name][group] = round(float((total.argmax(1) == truth).mean()), 4)
            print(f"{name:10s} {group:26s} {result['accuracy'][name][group]:.4f} ({len(variants) * (1 + mirrored)} "
                  f"reads per face)", flush=True)
    result["reads_per_face"] = {g: len(v) * (1 + (g != "as it is")) for g, v in GROUPS.items()}
    atomic_write_text(args.out, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
