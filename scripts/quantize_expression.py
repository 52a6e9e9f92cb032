"""Make the int8 copy of one of the face reader's expression networks and measure what it changes. Writes
``checkpoints/<network>.int8.pt`` and ``docs/readers_face_int8.json`` (``--out``).

    OMP_NUM_THREADS=1 python scripts/quantize_expression.py --data ../shared/data
    OMP_NUM_THREADS=1 python scripts/quantize_expression.py --data ../shared/data \
        --network checkpoints/fer_expression_small.pt --stacker checkpoints/face_reader_small.pt \
        --out docs/readers_face_small_int8.json

Calibration: ``--n`` faces drawn (``numpy.random.default_rng(--seed)``) from the rows the network was trained on
(FER2013 Training minus the stacker's validation split, ``train_face_reader.validation_split``), each also mirrored
as the reader reads it. The face reader's benchmark rows (FER2013 PublicTest, CK+48; ``readers/face_eval.py``) are
then read with the float network and with the int8 copy, with how far the valence probabilities move and the time
per crop on one thread (the median of 5 reads of 512 crops, after 2 warm-up reads).
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

from crossemo_core.benchmark.speed import median_seconds  # noqa: E402
from crossemo_core.clip.expression import ExpressionModel, int8_path, quantize, save_int8  # noqa: E402
from crossemo_core.paths import atomic_write_text  # noqa: E402
from crossemo_core.readers.face import DEFAULT_EXPRESSION, DEFAULT_STACKER, FaceReader  # noqa: E402
from crossemo_core.readers.face_eval import face_rows  # noqa: E402
from train_face_reader import validation_split  # noqa: E402


def ms_per_crop(model: ExpressionModel, faces: np.ndarray) -> float:
    return median_seconds(lambda: model.logits(faces), repeats=5, warmups=2) / len(faces) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--network", type=Path, default=DEFAULT_EXPRESSION)
    ap.add_argument("--stacker", type=Path, default=DEFAULT_STACKER, help="the face reader's stacker of --network")
    ap.add_argument("--n", type=int, default=2000, help="calibration faces (each also read mirrored)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "readers_face_int8.json")
    args = ap.parse_args()
    torch.set_num_threads(1)

    fer = np.load(args.data / "fer2013" / "fer2013.npz")
    train_idx, _ = validation_split(fer["usage"].astype(str), seed=0)
    picks = np.sort(np.random.default_rng(args.seed).choice(train_idx, args.n, replace=False))
    faces = fer["images"][picks]
    float_model = ExpressionModel.load(args.network, int8=False)
    quantized = quantize(float_model.net, np.concatenate([faces, faces[:, :, ::-1]]))
    meta = {"calibration": {"faces": int(args.n), "mirrored": True, "seed": args.seed,
                            "rows": "FER2013 Training minus the validation split (train_face_reader.py)"},
            "torch": torch.__version__, "command": "python " + " ".join(sys.argv)}
    out = save_int8(int8_path(args.network), quantized, args.network, meta)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")

    readers = {"float": FaceReader.load(args.network, args.stacker, with_landmarker=False, int8=False,
                                        small_faces=None),
               "int8": FaceReader.load(args.network, args.stacker, with_landmarker=False, int8=True,
                                       small_faces=None)}
    if not readers["int8"].expression.runs_int8:
        raise SystemExit("the int8 copy does not run here (torch's quantised engine is "
                         f"{torch.backends.quantized.engine}, or the copy could not be read: see the warning above); "
                         "nothing to measure.")
    rows = {name: face_rows(args.data, reader) for name, reader in readers.items()}
    test = fer["usage"].astype(str) == "PublicTest"
    valence = {name: reader.read_crops(fer["images"][test], use_blendshapes=False).valence
               for name, reader in readers.items()}
    moved = np.abs(valence["float"] - valence["int8"]).max(axis=1)
    timing = fer["images"][test][:512]
    report = {
        "command": "OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
        "calibration": meta["calibration"],
        "rows": [{"test": f["test"], "n": f["n"],
                  **{f"{k}_float": round(f[k], 4) for k in ("accuracy", "emotion_uar", "valence_uar")},
                  **{f"{k}_int8": round(q[k], 4) for k in ("accuracy", "emotion_uar", "valence_uar")}}
                 for f, q in zip(rows["float"], rows["int8"])],
        "publictest_valence_probability_moved": {"mean": round(float(moved.mean()), 4),
                                                  "p95": round(float(np.quantile(moved, 0.95)), 4),
                                                  "max": round(float(moved.max()), 4)},
        "publictest_valence_argmax_agreement": round(float(np.mean(
            valence["float"].argmax(1) == valence["int8"].argmax(1))), 4),
        "ms_per_crop_one_thread": {name: round(ms_per_crop(reader.expression, timing), 3)
                                   for name, reader in readers.items()},
    }
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
