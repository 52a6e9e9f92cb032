"""Held-apart evaluation of clip verdicts on real files, through the whole path (decode -> face mesh -> crops ->
expression network -> voice features -> clip model -> verdict).

    nice -n 5 python scripts/eval_clip_heldapart.py --fer-data ../shared/data/fer2013/fer2013.npz \
        --ravdess ../shared/data/ravdess --out docs/clip_heldapart.json

Clips: every RAVDESS speech take of the held-apart actors (18-20, never used for training or validation) twice:
once with a FER2013 PublicTest half-B face (never used for training or validation) of the same valence (normal) and
once with a face of another valence (abnormal). Each clip is an MP4 (H.264 + AAC, 25 fps, 320x240): the 48x48 face
upscaled to 150 px on a grey background, drifting slightly, with the voice as its sound track. The clips are written
to a temporary folder that is removed at the end (``--keep DIR`` keeps them there instead; never commit them).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.clip import corpus, synth  # noqa: E402
from crossemo_core.clip.verdict import ClipScorer  # noqa: E402
from crossemo_core.evaluation import detection_metrics  # noqa: E402
from crossemo_core.features.voice import load_audio  # noqa: E402

VALENCE = ("negative", "neutral", "positive")


def build_clip(face48: np.ndarray, audio: np.ndarray, rng: np.random.Generator, fps: int = 25) -> bytes:
    n = int(np.ceil(len(audio) / synth.AUDIO_RATE * fps))
    phase = rng.uniform(0, 2 * np.pi, 3)
    return synth.encode_video(
        lambda i: synth.place((240, 320), face48, int(150 + 4 * np.sin(i / 17 + phase[0])),
                              160 + 6 * np.sin(i / 23 + phase[1]), 120 + 4 * np.sin(i / 29 + phase[2]), background=110),
        n, fps, audio, container="mp4", crf=26)


def valence_accuracy(rows: list[dict], side: str) -> tuple[float, dict[str, float]]:
    """Accuracy of ``side``'s ("face"/"voice") predicted valence over rows that have one: overall and per class."""
    scored = [r for r in rows if r[f"{side}_predicted"]]
    hits = {c: [r[f"{side}_predicted"] == c for r in scored if r[f"{side}_valence"] == c]
            for c in sorted({r[f"{side}_valence"] for r in scored})}
    overall = float(np.mean([r[f"{side}_predicted"] == r[f"{side}_valence"] for r in scored]))
    return overall, {c: float(np.mean(h)) for c, h in hits.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fer-data", type=Path, default=Path("../shared/data/fer2013/fer2013.npz"))
    ap.add_argument("--ravdess", type=Path, default=Path("../shared/data/ravdess"))
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("docs/clip_heldapart.json"))
    ap.add_argument("--part", choices=("heldout", "valid"), default="heldout")
    ap.add_argument("--limit", type=int, default=0, help="only this many voice takes (smoke runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="keep the clips in this folder (outside the repository!)")
    ap.add_argument("--rows", type=Path, help="also write the per-clip rows (FER2013 row numbers and labels, i.e. "
                                              "material cut from ../shared/data: outside the repository!)")
    args = ap.parse_args()
    started = time.perf_counter()

    pool = corpus.fer_pools(args.fer_data)[args.part]
    audio_dir = args.ravdess / "audio"
    files = sorted(p for a in corpus.ACTORS[args.part] for p in (audio_dir / f"Actor_{a:02d}").glob("03-01-*.flac")
                   if p.stem not in corpus.DUPLICATE_TAKES)
    if args.limit:
        files = files[:: max(1, len(files) // args.limit)][: args.limit]
    rng = np.random.default_rng(args.seed)
    scorer = ClipScorer(args.checkpoint)
    rows = []
    with tempfile.TemporaryDirectory(prefix="crossemo-heldapart-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for k, path in enumerate(files):
            emotion = int(path.stem.split("-")[2])
            voice_val = 1 if emotion in (1, 2) else 2 if emotion in (3, 8) else 0
            audio, sr = load_audio(path)
            if sr != synth.AUDIO_RATE:
                from scipy.signal import resample_poly
                audio = resample_poly(audio, synth.AUDIO_RATE, sr).astype(np.float32)
            other = int(rng.choice([v for v in range(3) if v != voice_val]))
            for face_val in (voice_val, other):
                row = pool.sample(face_val, rng)
                clip = folder / f"{path.stem}_fer{int(pool.index[row])}.mp4"
                clip.write_bytes(build_clip(pool.images[row], audio, rng))
                v = scorer.score(clip)
                rows.append({"clip": clip.name, "voice": path.stem, "face_fer_row": int(pool.index[row]),
                             "face_valence": VALENCE[face_val], "voice_valence": VALENCE[voice_val],
                             "abnormal": face_val != voice_val, "verdict": v.verdict, "reason": v.reason,
                             "p_inconsistent": v.p_inconsistent, "similarity": v.similarity,
                             "face_found": v.face_fraction, "face_predicted": v.face.get("valence"),
                             "voice_predicted": v.voice.get("valence")})
                if not args.keep:
                    clip.unlink()
            if (k + 1) % 20 == 0:
                print(f"{k + 1}/{len(files)} voice takes ({time.perf_counter() - started:.0f} s)", flush=True)
    scorer.close()

    y = np.array([r["abnormal"] for r in rows])
    p = np.array([np.nan if r["p_inconsistent"] is None else r["p_inconsistent"] for r in rows])
    decided = np.array([r["verdict"] != "undetermined" for r in rows])
    ok = np.isfinite(p)
    m_all = detection_metrics(y[ok], p[ok], p[ok] >= scorer.model.threshold)
    m_dec = detection_metrics(y[decided], p[decided], np.array([r["verdict"] == "inconsistent" for r in rows])[decided])
    face_acc, face_per_class = valence_accuracy(rows, "face")
    voice_acc, voice_per_class = valence_accuracy(rows, "voice")
    result = {
        "what": f"{len(rows)} clips built from RAVDESS actors {corpus.ACTORS[args.part]} x FER2013 PublicTest "
                f"{'half B' if args.part == 'heldout' else 'half A'} faces, scored end to end from MP4 files",
        "auc": m_all["auc"], "metrics_all_with_a_score": m_all, "metrics_decided": m_dec,
        "n_clips": len(rows), "n_undetermined": int((~decided).sum()),
        "undetermined_reasons": sorted({r["reason"].split(":")[0] for r in rows if r["verdict"] == "undetermined"}),
        "face_found_mean": float(np.mean([r["face_found"] for r in rows])),
        "face_valence_accuracy": float(face_acc), "voice_valence_accuracy": float(voice_acc),
        "face_valence_accuracy_per_class": face_per_class, "voice_valence_accuracy_per_class": voice_per_class,
        "seconds": round(time.perf_counter() - started, 1), "seed": args.seed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float))
    if args.rows:
        args.rows.parent.mkdir(parents=True, exist_ok=True)
        args.rows.write_text(json.dumps(rows, indent=1, default=float))
    print(f"AUC {m_all['auc']:.4f} on {int(ok.sum())} clips with a score ({int((~decided).sum())} undetermined); "
          f"decided: AUC {m_dec['auc']:.4f}, accuracy {m_dec['accuracy']:.3f}, TPR {m_dec['tpr']:.3f}, "
          f"FPR {m_dec['fpr']:.3f}; face valence accuracy {face_acc:.3f}, voice {voice_acc:.3f}; "
          f"written {args.out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
