"""Measure where FER2013 faces have their eyes and mouth: the alignment template of crossemo_core.clip.expression.

    python scripts/calibrate_fer_template.py --data ../shared/data/fer2013/fer2013.npz [--n 400]

Runs mediapipe's face mesh on random FER2013 Training images (upscaled 4x, on a grey canvas so the whole face is
inside the frame) and prints the median eye centres (mean of each eye's two corners) and mouth centre (mean of the
lip corners) in 48x48 coordinates. FER_TEMPLATE is that median, made left-right symmetric.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.clip.face import LEFT_EYE, LIP_CORNERS, RIGHT_EYE, _import_face_mesh  # noqa: E402


def main() -> int:
    import cv2

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("../shared/data/fer2013/fer2013.npz"))
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    d = np.load(args.data)
    idx = np.flatnonzero(d["usage"] == "Training")
    pick = np.random.default_rng(args.seed).choice(idx, args.n, replace=False)
    mesh = _import_face_mesh().FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                        min_detection_confidence=0.3)
    s, p = 4, 48 * 4
    points = []
    for i in pick:
        canvas = np.full((2 * p, 2 * p), 128, np.uint8)
        canvas[p // 2:p // 2 + p, p // 2:p // 2 + p] = cv2.resize(d["images"][i], (p, p), interpolation=cv2.INTER_CUBIC)
        result = mesh.process(np.repeat(canvas[..., None], 3, axis=2))
        if not result.multi_face_landmarks:
            continue
        lm = (np.array([(q.x, q.y) for q in result.multi_face_landmarks[0].landmark]) * 2 * p - p // 2) / s
        points.append(np.concatenate([lm[list(RIGHT_EYE)].mean(0), lm[list(LEFT_EYE)].mean(0),
                                      lm[list(LIP_CORNERS)].mean(0)]))
    pts = np.array(points)
    med = np.median(pts, 0)
    print(f"faces found in {len(pts)} of {len(pick)} images")
    print(f"median right eye ({med[0]:.2f}, {med[1]:.2f}), left eye ({med[2]:.2f}, {med[3]:.2f}), "
          f"mouth ({med[4]:.2f}, {med[5]:.2f}); sd {np.round(pts.std(0), 2).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
