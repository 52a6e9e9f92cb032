"""How well is a face read when its crop is aligned on the face detector's key points (eyes, mouth centre) instead
of the face mesh's, as the face tracker does where the mesh finds no face (``FaceFrame.from_mesh``)? FER2013
PublicTest faces (half A, the validation half) drawn at random places on grey frames, sharp and through JPEG; per
setting: how many frames the mesh reads, how many the detectors give key points for, the face reader's valence UAR on
mesh-aligned crops and on key-point-aligned crops of the same frames (faces both read: the comparison), how often the
two crops' top valences agree, how far the detector's points lie from the mesh's (in eye distances, in the face's
own frame), and the valence accuracy of the key-point crops of the faces the mesh did not read (the faces the
fallback serves; few here). Writes ``docs/face_keypoint_crops.json``.

    python scripts/face_keypoint_crops.py --data ../shared/data
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crossemo_core.clip import corpus, synth  # noqa: E402
from crossemo_core.clip.face import FaceAnalyzer, _detection_in, align_face, crop_scale, eye_mouth_points  # noqa: E402
from crossemo_core.paths import atomic_write_text  # noqa: E402
from crossemo_core.readers.face import FaceReader  # noqa: E402
from crossemo_core.readers.reading import unweighted_average_recall  # noqa: E402

SETTINGS = (("150 px on 320x240 (the clip evaluation's faces)", (240, 320), 150, None),
            ("150 px on 320x240, JPEG quality 10", (240, 320), 150, 10),
            ("80 px on 640x480 (a face across a room)", (480, 640), 80, None),
            ("80 px on 640x480, JPEG quality 10", (480, 640), 80, 10))


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    import cv2

    ok, data = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[:, :, ::-1])


def _offsets(mesh_points: np.ndarray, det_points: np.ndarray) -> np.ndarray:
    """``(3, 2)`` detector minus mesh points in the face's own frame (x along the mesh's eye line), / eye distance."""
    eyes = mesh_points[1] - mesh_points[0]
    d = float(np.hypot(*eyes))
    c, s = eyes / d
    rot = np.array([[c, s], [-s, c]])
    return (det_points - mesh_points) @ rot.T / d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--faces", type=int, default=600)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "face_keypoint_crops.json")
    args = ap.parse_args()
    pool = corpus.fer_pools(args.data / "fer2013" / "fer2013.npz")["valid"]
    analyser, reader = FaceAnalyzer(), FaceReader.load(with_landmarker=False)
    rows = []
    for name, (h, w), px, quality in SETTINGS:
        rng = np.random.default_rng(0)
        meshed = pointed = 0
        truth, mesh_crops, point_crops, mesh_scales, point_scales, offsets = [], [], [], [], [], []
        only_truth, only_crops, only_scales = [], [], []  # faces with key points the mesh did not read
        for _ in range(args.faces):
            row = int(rng.integers(len(pool.images)))
            rgb = synth.place((h, w), pool.images[row], px, rng.uniform(0.3, 0.7) * w, rng.uniform(0.35, 0.65) * h,
                              background=110)
            if quality is not None:
                rgb = _jpeg(rgb, quality)
            found = analyser.detect(rgb) or analyser.detect_in_tiles(rgb)
            face = _detection_in(found, (w / 2, h / 2, 2.0 * max(w, h)))
            frame = analyser.analyse(0.0, rgb, still=True)
            meshed += frame.crop is not None and frame.from_mesh
            pointed += face is not None
            if face is not None and (frame.crop is None or not frame.from_mesh):
                only_truth.append(int(pool.valence[row]))
                only_crops.append(align_face(rgb, face.points)[0])
                only_scales.append(crop_scale(face.points))
            if face is None or frame.crop is None or not frame.from_mesh:
                continue
            truth.append(int(pool.valence[row]))
            mesh_crops.append(frame.crop)
            mesh_scales.append(frame.face_scale)
            point_crops.append(align_face(rgb, face.points)[0])
            point_scales.append(crop_scale(face.points))
            mesh = analyser._mesh(rgb, analyser._roi, True)
            offsets.append(_offsets(eye_mouth_points(mesh), face.points))
        y = np.array(truth)
        by_mesh = reader.read_crops(np.stack(mesh_crops), scales=np.array(mesh_scales)).valence.argmax(1)
        by_points = reader.read_crops(np.stack(point_crops), scales=np.array(point_scales)).valence.argmax(1)
        off = np.stack(offsets)
        only = (reader.read_crops(np.stack(only_crops), scales=np.array(only_scales)).valence.argmax(1)
                if only_crops else np.zeros(0, int))
        rows.append({"setting": name, "faces": args.faces, "meshed": meshed, "with_key_points": pointed,
                     "both": len(y),
                     "valence_uar_mesh_crops": round(unweighted_average_recall(y, by_mesh, 3), 3),
                     "valence_uar_key_point_crops": round(unweighted_average_recall(y, by_points, 3), 3),
                     "top_valence_agrees": round(float(np.mean(by_mesh == by_points)), 3),
                     "not_meshed_with_key_points": len(only_truth),
                     "valence_accuracy_key_point_crops_not_meshed": round(float(np.mean(only == np.array(only_truth))),
                                                                          3) if only_truth else None,
                     "median_crop_scale_mesh_vs_points": [round(float(np.median(mesh_scales)), 3),
                                                          round(float(np.median(point_scales)), 3)],
                     "key_point_offset_eye_distances": {
                         k: {"mean": np.round(off[:, i].mean(0), 3).tolist(),
                             "median_abs": np.round(np.median(np.abs(off[:, i]), 0), 3).tolist()}
                         for i, k in enumerate(("right_eye", "left_eye", "mouth"))}})
        print(json.dumps(rows[-1]), flush=True)
    analyser.close()
    atomic_write_text(args.out, json.dumps({"command": "python scripts/face_keypoint_crops.py --data ../shared/data",
                                            "pool": "FER2013 PublicTest half A (validation)", "rows": rows},
                                           indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
