"""End-to-end evaluation of clip verdicts on real files (decode -> face tracker -> crops -> face reader and clip
model -> voice reader -> evidence combiner -> verdict), and the fit of the evidence combiner.

    python scripts/eval_clip_heldapart.py --part valid --fit-combiner checkpoints/clip_combiner.json
    python scripts/eval_clip_heldapart.py --part heldout --out docs/clip_heldapart.json

Clips: every RAVDESS speech take of the part's actors (valid 15-17, heldout 18-20: never used to train the clip
model or the voice reader) in ``--pairs-per-take`` pairs (default 3): in each, once with a FER2013 PublicTest face
(valid: half A, heldout: half B, never used to train) of the same valence (consistent) and once with a face of
another valence (inconsistent), faces drawn at random with replacement. Each clip is an MP4
(H.264 + AAC, 25 fps, 320x240): the 48x48 face upscaled to 150 px on a grey background, drifting slightly, with the
voice as its sound track. ``--degrade`` also scores every clip with its voice degraded (noise at 5-30 dB SNR, then a
lossy codec round trip). Stability: every ``--stability-every``-th clip (1: every clip) is also scored remuxed
losslessly to Matroska and QuickTime, re-encoded to WebM (VP8 + Opus: WebM cannot hold H.264/AAC) and rendered again
with its audio shifted by -100 and +100 ms; the largest and the 95th-percentile change of P(inconsistent) are
reported per kind of copy. AUC and ECE come with a 95 % interval from resampling the voice takes (a take's clips
share its voice reading, so they are not independent draws). Clips are
written to a temporary folder that is removed at the end; the JSON holds aggregates only (``--rows FILE`` writes
the per-clip rows, which name FER2013 rows, outside the repository).

``--fit-combiner FILE`` (with ``--part valid``): fit the evidence combiner on these clips' embedding posteriors and
readings and write it (the combiner already shipped is not used while fitting).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.cache import json_safe  # noqa: E402
from crossemo_core.clip import corpus, synth  # noqa: E402
from crossemo_core.clip.combine import FEATURES, EvidenceCombiner, evidence_features  # noqa: E402
from crossemo_core.clip.decode import NamedBytes  # noqa: E402
from crossemo_core.clip.score import DEFAULT_CLIP_CHECKPOINT  # noqa: E402
from crossemo_core.clip.verdict import ClipScorer, ClipVerdict  # noqa: E402
from crossemo_core.data.labels import ravdess_emotion_to_3class  # noqa: E402
from crossemo_core.evaluation import calibration_metrics, detection_metrics, intervals_over_groups  # noqa: E402
from crossemo_core.features.voice import load_audio  # noqa: E402
from crossemo_core.paths import atomic_write  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig, Augmenter  # noqa: E402

VALENCE = ("negative", "neutral", "positive")


def build_clip(face48: np.ndarray, audio: np.ndarray, rng: np.random.Generator, fps: int = 25,
               face_px: int = 150) -> bytes:
    """An MP4 of ``face48`` drawn ``face_px`` pixels wide (breathing by 2.7 %) on a 320x240 grey frame, drifting
    slightly, with ``audio`` as its sound track."""
    n = int(np.ceil(len(audio) / synth.AUDIO_RATE * fps))
    phase = rng.uniform(0, 2 * np.pi, 3)
    return synth.encode_video(
        lambda i: synth.place((240, 320), face48, int(face_px + face_px * 4 / 150 * np.sin(i / 17 + phase[0])),
                              160 + 6 * np.sin(i / 23 + phase[1]), 120 + 4 * np.sin(i / 29 + phase[2]), background=110),
        n, fps, audio, container="mp4", crf=26)


def row_of(v: ClipVerdict) -> dict:
    """What the evaluation keeps of a verdict."""
    contradicts = (v.verdict == "consistent" and v.face.valence != v.voice.valence) or \
                  (v.verdict == "inconsistent" and v.face.valence == v.voice.valence)
    return {"verdict": v.verdict, "strength": v.strength, "p": v.p_inconsistent, "p_embedding": v.p_embedding,
            "similarity": v.similarity,
            "p_readings": v.p_readings, "face_predicted": v.face.valence,
            "voice_predicted": v.voice.valence, "face_valence_probs": v.face.valence_probs,
            "voice_valence_probs": v.voice.valence_probs, "face_emotion_probs": v.face.probs,
            "voice_emotion_probs": v.voice.probs, "face_arousal_probs": v.face.arousal_probs,
            "voice_arousal_probs": v.voice.arousal_probs, "contradicts_readings": bool(contradicts),
            "has_conflict_sentence": v.conflict is not None, "face_found": v.face_fraction,
            "reason": v.reason}


def evidence_of(v: ClipVerdict) -> dict:
    """What a stability row keeps of one copy's verdict: its probability, evidence and scored windows."""
    row = row_of(v)
    return {**{k: row[k] for k in ("p", "similarity", "face_valence_probs", "voice_valence_probs")},
            "windows": [[round(w.start, 2), w.similarity] for w in v.timeline if w.status == "scored"]}


def changes_of(copies: dict[str, dict]) -> dict[str, float | None]:
    """Each copy's change of P(inconsistent) against the original (None: the copy lost its probability)."""
    p0 = copies["original"]["p"]
    return {k: None if c["p"] is None else abs(c["p"] - p0) for k, c in copies.items() if k != "original"}


def summarise(rows: list[dict], threshold: float = 0.5) -> dict:
    y = np.array([r["abnormal"] for r in rows])
    p = np.array([np.nan if r["p"] is None else r["p"] for r in rows], dtype=float)
    decided = np.array([r["verdict"] != "undetermined" for r in rows])
    ok = np.isfinite(p)
    out = {"n_clips": len(rows), "undetermined_share": float(np.mean(~decided)),
           "auc_all_with_a_probability": detection_metrics(y[ok], p[ok], p[ok] >= threshold)["auc"],
           "decided": detection_metrics(y[decided], p[decided],
                                        np.array([r["verdict"] == "inconsistent" for r in rows])[decided])}
    if decided.any():
        out["calibration_decided"] = calibration_metrics(y[decided], p[decided])
        out["decided_95pct_over_voice_takes"] = intervals_over_groups(
            y[decided], p[decided], [r["voice"] for r in np.array(rows)[decided]])
        pe = np.array([r["p_embedding"] for r in np.array(rows)[decided]], dtype=float)
        out["embedding_only_decided"] = {"auc": detection_metrics(y[decided], pe, pe >= 0.5)["auc"],
                                         **{k: v for k, v in calibration_metrics(y[decided], pe).items()
                                            if k != "bins"}}
        out["contradictions_without_sentence"] = int(sum(r["contradicts_readings"] and not r["has_conflict_sentence"]
                                                         for r in rows if r["verdict"] != "undetermined"))
        out["contradictions_with_sentence"] = int(sum(r["contradicts_readings"] and r["has_conflict_sentence"]
                                                      for r in rows if r["verdict"] != "undetermined"))
    types = {}
    for fv in VALENCE:
        for vv in VALENCE:
            if fv != vv:
                sel = [r for r in rows if (r["face_valence"], r["voice_valence"]) == (fv, vv) or not r["abnormal"]]
                ys = np.array([r["abnormal"] for r in sel])
                ps = np.array([np.nan if r["p"] is None else r["p"] for r in sel], dtype=float)
                good = np.isfinite(ps)
                types[f"face {fv} / voice {vv}"] = {"n_inconsistent": int(ys.sum()), "auc": detection_metrics(
                    ys[good], ps[good], ps[good] >= threshold)["auc"]}
    out["per_anomaly_type"] = types
    for side in ("face", "voice"):
        scored = [r for r in rows if r[f"{side}_predicted"]]
        out[f"{side}_valence_accuracy"] = float(np.mean([r[f"{side}_predicted"] == r[f"{side}_valence"]
                                                         for r in scored])) if scored else None
    out["strength_counts"] = {s: int(sum(r["strength"] == s for r in rows)) for s in ("weak", "moderate", "strong")}
    return out


def stability_summary(stability: list[dict]) -> dict:
    """Per kind of copy (and over all of them): the largest and the 95th-percentile change of P(inconsistent), the
    share of clips changed by more than 0.05, and how many copies lost their probability (undetermined)."""
    def numbers(changes: list) -> dict:
        d = np.array([c for c in changes if c is not None], dtype=float)
        return {"n": int(len(changes)), "lost_probability": int(sum(c is None for c in changes)),
                "max_change": float(d.max()) if len(d) else None,
                "p95_change": float(np.percentile(d, 95)) if len(d) else None,
                "share_over_0.05": float(np.mean(d > 0.05)) if len(d) else None}

    kinds = list(stability[0])
    out = {"n_clips": len(stability), "copies": {k: numbers([s[k] for s in stability]) for k in kinds}}
    worst = [max((c for c in s.values() if c is not None), default=None) for s in stability]
    out["any_copy"] = numbers(worst)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fer-data", type=Path, default=Path("../shared/data/fer2013/fer2013.npz"))
    ap.add_argument("--ravdess", type=Path, default=Path("../shared/data/ravdess"))
    ap.add_argument("--part", choices=("heldout", "valid"), default="heldout")
    ap.add_argument("--voices", choices=("ravdess", "emodb"), default="ravdess",
                    help="emodb: voices of EmoDB speakers 15 and 16 (German; a corpus the clip model never saw, "
                         "speakers the voice reader never trained on) instead of the part's RAVDESS actors")
    ap.add_argument("--emodb", type=Path, default=Path("../shared/data/emodb"))
    ap.add_argument("--out", type=Path, help="JSON of aggregate numbers (default docs/clip_<part>.json)")
    ap.add_argument("--checkpoint", type=Path,
                    help="a candidate clip model instead of the shipped one (no combiner: compare similarities)")
    ap.add_argument("--fit-combiner", type=Path, help="with --part valid: fit the evidence combiner, write it here")
    ap.add_argument("--degrade", action="store_true", help="also score each clip with a degraded voice")
    ap.add_argument("--stability-every", type=int, default=4,
                    help="stability check on every k-th clip (1: all, 0: none)")
    ap.add_argument("--pairs-per-take", type=int, default=3,
                    help="consistent/inconsistent pairs of clips per voice take (each with its own faces)")
    ap.add_argument("--face-px", type=int, default=150,
                    help="width of the drawn face (pixels; below ~45 the face reader's small-face network reads it)")
    ap.add_argument("--main-face-network-only", action="store_true",
                    help="read every face with the main network (to measure what the small-face network adds)")
    ap.add_argument("--limit", type=int, default=0, help="only this many voice takes (smoke runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=Path, help="per-clip rows (name FER2013 rows: outside the repository!)")
    args = ap.parse_args()
    out_path = args.out or Path(f"docs/clip_{args.part}.json")
    started = time.perf_counter()
    pool = corpus.fer_pools(args.fer_data)[args.part]
    audio_dir = args.ravdess / "audio"
    if args.voices == "emodb":
        from crossemo_core.benchmark.readers import VALID_SPEAKERS
        from crossemo_core.readers.voice_corpora import list_corpus

        takes = [(u.path, u.valence) for u in list_corpus("emodb", args.emodb.parent)
                 if u.speaker in VALID_SPEAKERS["emodb"]]
        voices_what = "EmoDB speakers 15-16"
    else:
        files = sorted(p for a in corpus.ACTORS[args.part] for p in (audio_dir / f"Actor_{a:02d}").glob("03-01-*.flac")
                       if p.stem not in corpus.DUPLICATE_TAKES)
        takes = [(p, int(ravdess_emotion_to_3class(np.array([int(p.stem.split("-")[2])]))[0])) for p in files]
        voices_what = f"RAVDESS actors {corpus.ACTORS[args.part]}"
    if args.limit:
        takes = takes[:: max(1, len(takes) // args.limit)][: args.limit]
    rng = np.random.default_rng(args.seed)
    # fitting: the sources themselves, not an earlier combiner's output (an explicit checkpoint loads no combiner)
    scorer = ClipScorer(args.checkpoint or (DEFAULT_CLIP_CHECKPOINT if args.fit_combiner else None))
    if args.main_face_network_only:
        if args.fit_combiner:
            ap.error("--main-face-network-only measures the shipped reader without a part of it; it fits nothing")
        scorer.face_reader.small_faces = None
        for name in ("face_small_reader", "face_small_expression"):
            scorer.models.pop(name)  # the record names the models that read these clips
    augmenter = Augmenter(AugmentConfig(), seed=args.seed) if args.degrade else None
    rows, degraded_rows, stability_rows = [], [], []
    for k, (path, voice_val) in enumerate(takes):
        audio, sr = load_audio(path)
        for _ in range(args.pairs_per_take):
            other = int(rng.choice([v for v in range(3) if v != voice_val]))
            for face_val in (voice_val, other):
                row = pool.sample(face_val, rng)
                render = int(rng.integers(2**31))  # the face's drift: the shifted copies are rendered the same way
                data = build_clip(pool.images[row], audio, np.random.default_rng(render), face_px=args.face_px)
                base = {"voice": path.stem, "face_fer_row": int(pool.index[row]), "face_valence": VALENCE[face_val],
                        "voice_valence": VALENCE[voice_val], "abnormal": face_val != voice_val}
                v = scorer.score(NamedBytes(f"{path.stem}.mp4", data))
                rows.append({**base, **row_of(v)})
                if args.stability_every and len(rows) % args.stability_every == 0 and v.p_inconsistent is not None:
                    copies = {f"remux_{fmt}": NamedBytes(f"{path.stem}.{ext}", synth.remux(data, fmt))
                              for fmt, ext in (("matroska", "mkv"), ("mov", "mov"))}
                    copies["webm"] = NamedBytes(f"{path.stem}.webm", synth.to_webm(data))
                    for delta in (-0.1, 0.1):
                        copies[f"shift_{delta * 1000:+.0f}ms"] = NamedBytes(f"{path.stem}_shift.mp4", build_clip(
                            pool.images[row], synth.shifted(audio, delta), np.random.default_rng(render),
                            face_px=args.face_px))
                    detail = {"original": evidence_of(v), **{kind: evidence_of(scorer.score(copy))
                                                             for kind, copy in copies.items()}}
                    stability_rows.append({**base, "copies": detail})
                if augmenter is not None:
                    noisy = augmenter.apply(("noise", "codec"), audio)
                    degraded = build_clip(pool.images[row], noisy, rng, face_px=args.face_px)
                    dv = scorer.score(NamedBytes(f"{path.stem}_degraded.mp4", degraded))
                    degraded_rows.append({**base, **row_of(dv)})
        if (k + 1) % 20 == 0:
            print(f"{k + 1}/{len(takes)} voice takes ({time.perf_counter() - started:.0f} s)", flush=True)
    scorer.close()
    result = {"what": f"{len(rows)} clips: {voices_what} x FER2013 PublicTest "
                      f"{'half B' if args.part == 'heldout' else 'half A'} faces ({args.face_px} px wide"
                      f"{', main face network only' if args.main_face_network_only else ''}), end to end from MP4 "
                      "files",
              "command": "python " + " ".join(sys.argv), "seed": args.seed, "models": scorer.models,
              "face_network_run": "int8 copy" if scorer.face_reader.expression.runs_int8 else "float",
              "combiner": "not used (fitting it)" if args.fit_combiner else "shipped", "clean": summarise(rows)}
    if degraded_rows:
        result["degraded_voice"] = summarise(degraded_rows)
    if stability_rows:
        result["stability"] = stability_summary([changes_of(r["copies"]) for r in stability_rows])
    if args.fit_combiner:
        decided = [r for r in rows if r["p_embedding"] is not None]
        x = evidence_features(np.array([r["similarity"] for r in decided]),
                              np.array([[r["face_valence_probs"][v] for v in VALENCE] for r in decided]),
                              np.array([[r["voice_valence_probs"][v] for v in VALENCE] for r in decided]))
        y = np.array([r["abnormal"] for r in decided], dtype=int)
        combiner = EvidenceCombiner.fit(x, y, {"models": scorer.models, "clips": result["what"],
                                               "command": result["command"]})
        combiner.save(args.fit_combiner)
        p = combiner.probability(x)
        result["combiner_on_its_fitting_clips"] = {"auc": detection_metrics(y, p, p >= 0.5)["auc"],
                                                   "ece": calibration_metrics(y, p)["ece"],
                                                   "coef": dict(zip(FEATURES, combiner.coef.tolist()))}
    result["seconds"] = round(time.perf_counter() - started, 1)
    atomic_write(out_path, json.dumps(json_safe(result), indent=1).encode())
    for kind, n in result.get("stability", {}).get("copies", {}).items():
        print(f"stability {kind}: max change {n['max_change']:.3f}, 95th percentile {n['p95_change']:.3f}, "
              f"{n['share_over_0.05']:.1%} over 0.05, {n['lost_probability']} lost their probability")
    if args.rows:
        atomic_write(args.rows, json.dumps(json_safe({"clean": rows, "degraded": degraded_rows,
                                                      "stability": stability_rows}), indent=1).encode())
    c = result["clean"]
    cal = c.get("calibration_decided", {})
    floor = cal.get("ece_if_calibrated", {})
    over_takes = c.get("decided_95pct_over_voice_takes", {"auc": [np.nan] * 2, "ece": [np.nan] * 2})
    print(f"clean: AUC {c['auc_all_with_a_probability']:.3f} (decided clips {c['decided']['auc']:.3f}, 95 % over "
          f"voice takes {over_takes['auc'][0]:.3f}-{over_takes['auc'][1]:.3f}; their ECE "
          f"{over_takes['ece'][0]:.3f}-{over_takes['ece'][1]:.3f}), decided accuracy {c['decided']['accuracy']:.3f}, "
          f"ECE {cal.get('ece', float('nan')):.3f} (a calibrated model would show "
          f"{floor.get('p5', float('nan')):.3f}-{floor.get('p95', float('nan')):.3f} on these clips), saturated "
          f"{cal.get('saturated', float('nan')):.2f}, undetermined "
          f"{c['undetermined_share']:.2f}; written {out_path} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
