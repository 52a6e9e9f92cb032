"""Train the clip model (SIR-HCL on expression-network face logits x voice features) and write checkpoints/clip.pt.

    nice -n 5 python scripts/train_clip_model.py --fer-data ../shared/data/fer2013/fer2013.npz \
        --ravdess ../shared/data/ravdess --out checkpoints/clip.pt --results docs/clip_results.json \
        [--seed 1 --runs N]

Faces come from FER2013 (Training for training, PublicTest half A for validation, half B held apart) and voices from
RAVDESS (actors 1-14 training, 15-17 validation, 18-20 held apart); see crossemo_core/clip/corpus.py. The model,
losses, trainer, Beta mixture and checkpoint are the core's (crossemo_core.training.Trainer, fast preset). After
training the script fits the atypical-input gate, stores the population's neutral means (for per-person baselines),
evaluates clip-level verdicts on validation and held-apart clips (feature level: synthetic face "videos" of one
FER image, without decoding or face detection; scripts/eval_clip_heldapart.py measures the full path on real files),
measures what a per-actor neutral baseline changes, and writes the numbers to --results and the model card.

``--runs N`` trains the recipe N times (seeds ``--seed`` .. ``--seed + N - 1``) and ships them as one clip model
that averages their similarities window by window (``crossemo_core.clip.score.ClipModel``): runs of the same recipe
differ (validation window AUC 0.74-0.76 over seeds 1-3) and their mean is steadier under small shifts of the audio
than any one of them (docs/clip.md, "Stability").

``--labels emotions`` trains SIR-HCL's losses (L_share and the contrastive losses) on the 7 emotions faces and voices
share (FER2013's classes; RAVDESS calm -> neutral) instead of the 3 valence classes, and by default pairs each
training voice window's normal face by emotion (``--match emotion``: a face of the voice's own emotion). Anomalies,
validation pairs (early stopping, every reported number) and held-apart pairs stay defined on valence, exactly as
for the default model, so the numbers of both kinds of model are measured on the same pairs.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import pickle
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.clip import corpus, sequences as seq  # noqa: E402
from crossemo_core.clip.expression import FER_TO_VALENCE, ExpressionModel, softmax  # noqa: E402
from crossemo_core.clip.face import FaceFrame, FaceTrack  # noqa: E402
from crossemo_core.clip.gate import KnnGate  # noqa: E402
from crossemo_core.clip.score import ClipModel, save_runs  # noqa: E402
from crossemo_core.clip.verdict import Calibration, ClipAnalysis, ClipScorer, file_sha256  # noqa: E402
from crossemo_core.data.container import PairDataset  # noqa: E402
from crossemo_core.detector import Detector  # noqa: E402
from crossemo_core.config import ExperimentConfig  # noqa: E402
from crossemo_core.experiment import config_for  # noqa: E402
from crossemo_core.paths import atomic_write, atomic_write_text  # noqa: E402
from crossemo_core.evaluation import detection_metrics  # noqa: E402
from crossemo_core.training import Trainer, TrainingResult  # noqa: E402

_FOUND = np.zeros((1, 1), np.uint8)  # marks a frame "face found" in synthetic tracks (the crop itself is not needed)


class Printer:
    def on_step(self, event) -> None:  # noqa: ANN001
        pass

    def on_epoch(self, e) -> None:  # noqa: ANN001
        print(f"epoch {e.epoch:3d}: total {e.train_losses['total']:.3f} | valid AUC {e.valid_auc:.4f}"
              f"{' *' if e.is_best else ''} ({e.seconds:.0f} s)", flush=True)


def cache_file(args: argparse.Namespace, what: str) -> Path | None:
    """Where ``--cache`` keeps ``what`` for this ``--seed`` (the degraded copies depend on it), or None."""
    if not args.cache:
        return None
    base = Path(args.cache)
    return base.with_name(f"{base.stem}{what}-s{args.seed}{base.suffix}")


def load_clips(args: argparse.Namespace) -> dict[str, list[corpus.VoiceClip]]:
    cache = cache_file(args, "")
    if cache and cache.is_file():
        return pickle.loads(cache.read_bytes())
    clips = {}
    for part, actors in corpus.ACTORS.items():
        for degraded in (False, True):
            t0 = time.perf_counter()
            key = part + ("_degraded" if degraded else "")
            clips[key] = corpus.ravdess_clips(args.ravdess, actors, degraded=degraded, seed=args.seed)
            print(f"{key}: {len(clips[key])} RAVDESS clips of actors {actors[0]}-{actors[-1]} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    if cache:
        atomic_write(cache, pickle.dumps(clips))
    return clips


def load_twins(args: argparse.Namespace, clips: dict[str, list[corpus.VoiceClip]]) -> list[corpus.VoiceClip]:
    """AAC-coded twins of the training takes, clean and degraded (``--twin-bit-rates``), cached beside ``--cache``;
    with ``--limit`` only those of the chosen clips."""
    rates = tuple(args.twin_bit_rates)
    cache = cache_file(args, f"-aac-{'-'.join(map(str, rates))}")
    if cache and cache.is_file():
        twins = pickle.loads(cache.read_bytes())
    else:
        t0 = time.perf_counter()
        twins = [c for degraded in (False, True) for c in corpus.ravdess_clips(
            args.ravdess, corpus.ACTORS["train"], degraded=degraded, seed=args.seed, aac_bit_rates=rates)]
        print(f"voice twins: {len(twins)} takes coded ({time.perf_counter() - t0:.0f} s)", flush=True)
        if cache:
            atomic_write(cache, pickle.dumps(twins))
    wanted = {c.clip_id for c in clips["train"] + clips["train_degraded"]}
    return [c for c in twins if c.clip_id in wanted]


def synthetic_analysis(pairing: corpus.ClipPairing, logits: np.ndarray) -> ClipAnalysis:
    """A ClipAnalysis as if a video of the FER face had been decoded: a face in every frame at FACE_FPS (5 fps).
    These numbers are the clip model's own (no evidence combiner): the face reader's emotions are stood in for by
    the expression network's softmax, and there is no audio for the voice reader."""
    duration = pairing.clip.track.duration_s
    frames = [FaceFrame(t=i / seq.FACE_FPS, n_faces=1, crop=_FOUND) for i in range(len(logits))]
    return ClipAnalysis(name=f"{pairing.clip.clip_id}+fer{pairing.face_row}", voice_name=None, duration_s=duration,
                        track=FaceTrack(frames), face_logits=logits, voice=pairing.clip.track,
                        envelope=np.zeros(0), still=False, face_emotions=softmax(logits))


def clip_level(scorer: ClipScorer, pairings: list[corpus.ClipPairing], pool: corpus.FacePool, seed: int,
               calibrations: dict[int, Calibration] | None = None, faces: list[np.ndarray] | None = None,
               verdicts_out: list | None = None) -> dict:
    """Verdicts on synthetic clips (the same judge() as real clips) and their detection metrics."""
    if faces is None:
        picks = [(p.face_row, max(1, int(np.ceil(p.clip.track.duration_s * seq.FACE_FPS)))) for p in pairings]
        faces = corpus.face_logit_sequences(scorer.model.expression, pool, picks, seed)
    verdicts = [scorer.judge(synthetic_analysis(p, f), (calibrations or {}).get(p.clip.actor))
                for p, f in zip(pairings, faces)]
    if verdicts_out is not None:
        verdicts_out.extend(verdicts)
    return summarise(pairings, verdicts)


def summarise(pairings: list[corpus.ClipPairing], verdicts: list) -> dict:
    y = np.array([p.abnormal for p in pairings])
    p = np.array([v.p_inconsistent if v.p_inconsistent is not None else np.nan for v in verdicts])
    sim = np.array([v.similarity if v.similarity is not None else np.nan for v in verdicts])
    ok = np.isfinite(p)
    decided = np.array([v.verdict != "undetermined" for v in verdicts])
    m = detection_metrics(y[ok], p[ok], p[ok] >= 0.5)
    m["auc_similarity"] = detection_metrics(y[ok], -sim[ok], p[ok] >= 0.5)["auc"]
    m["n_undetermined"] = int((~decided).sum())
    m["undetermined_reasons"] = sorted({v.reason.split(":")[0] for v in verdicts if v.verdict == "undetermined"})
    dm = detection_metrics(y[decided], p[decided], np.array([v.verdict == "inconsistent" for v in verdicts])[decided])
    m["decided"] = {k: dm[k] for k in ("auc", "tpr", "fpr", "accuracy", "n_pairs", "n_abnormal")}
    return m


def baseline_experiment(scorer: ClipScorer, clips: list[corpus.VoiceClip], pool: corpus.FacePool, seed: int) -> dict:
    """Per actor: the first neutral take is the baseline (left out of the test); AUC without and with it.
    Faces are FER2013 images (no identity), so only the voice is calibrated here."""
    population = scorer.model.population
    out: dict = {"per_actor": {}}
    all_pairs, cal = [], {}
    for actor in sorted({c.actor for c in clips}):
        own = [c for c in clips if c.actor == actor]
        calm = sorted((c for c in own if c.emotion in (1, 2)), key=lambda c: (c.emotion, c.clip_id))
        if not calm:  # only with --limit
            continue
        base = calm[0]  # the first neutral take (calm when there is none)
        rows = [v for v in (seq.voice_window(base.track, a, b) for a, b in seq.window_starts(base.track.duration_s))
                if v is not None]
        cal[actor] = Calibration.from_rows(population, None, rows, name=base.clip_id)
        all_pairs += corpus.clip_pairings([c for c in own if c is not base], pool, seed + actor)
    picks = [(p.face_row, max(1, int(np.ceil(p.clip.track.duration_s * seq.FACE_FPS)))) for p in all_pairs]
    faces = corpus.face_logit_sequences(scorer.model.expression, pool, picks, seed)  # the same faces both ways
    v_plain: list = []
    v_cal: list = []
    plain = clip_level(scorer, all_pairs, pool, seed, faces=faces, verdicts_out=v_plain)
    calibrated = clip_level(scorer, all_pairs, pool, seed, cal, faces=faces, verdicts_out=v_cal)
    for actor in sorted(cal):
        idx = [i for i, p in enumerate(all_pairs) if p.clip.actor == actor]
        sub = [all_pairs[i] for i in idx]
        a = summarise(sub, [v_plain[i] for i in idx])
        b = summarise(sub, [v_cal[i] for i in idx])
        out["per_actor"][actor] = {"auc_without": a["auc"], "auc_with": b["auc"], "n": len(sub)}
    out["pooled"] = {"auc_without": plain["auc"], "auc_with": calibrated["auc"], "n": len(all_pairs),
                     "accuracy_without": plain["accuracy"], "accuracy_with": calibrated["accuracy"]}
    return out


@dataclasses.dataclass
class Run:
    """One training run of the recipe: its seed, the trained detector, and the pairs it was trained and chosen on."""

    seed: int
    result: TrainingResult
    clips: dict[str, list[corpus.VoiceClip]]
    train: PairDataset
    valid: PairDataset
    config: ExperimentConfig

    @property
    def detector(self) -> Detector:
        """The run's trained detector (its network, normalisation and own Beta mixture)."""
        return self.result.detector


def train_run(args: argparse.Namespace, seed: int, expression: ExpressionModel, face_id: str,
              pools: dict[str, corpus.FacePool]) -> Run:
    """Train the recipe once with ``seed`` (its degraded voice copies, face picks and network start all follow it)."""
    args = argparse.Namespace(**{**vars(args), "seed": seed})
    clips = load_clips(args)
    if args.limit:
        rng = np.random.default_rng(args.seed)
        clips = {k: [v[i] for i in sorted(rng.choice(len(v), min(args.limit, len(v)), replace=False))]
                 for k, v in clips.items()}
    train = corpus.window_pairs(clips["train"] + clips["train_degraded"], pools["train"], expression, face_id,
                                args.repeats, args.seed, "clip-train", match=args.match)
    if args.consistency > 0:
        twins = load_twins(args, clips)
        train = dataclasses.replace(train, voice_twin=corpus.voice_twins(train, twins))
        moved = np.mean([not np.array_equal(a, b) for a, b in zip(train.voice, train.voice_twin)])
        print(f"voice twins: AAC at {args.twin_bit_rates} bit/s; {moved:.0%} of the training windows have one",
              flush=True)
    valid = corpus.window_pairs(clips["valid"], pools["valid"], expression, face_id, 1, args.seed + 1, "clip-valid")
    for name, d in (("train", train), ("valid", valid)):
        print(f"{name}: {len(d)} window pairs, {int(d.is_abnormal.sum())} abnormal, "
              f"{len(set(d.speaker))} voice actors", flush=True)
    config = config_for(train, "fast", seed=args.seed, epochs=args.epochs, patience=10, mixture_var_floor=3e-3,
                        weight_decay=args.weight_decay, hidden_size=args.hidden, training_labels=args.labels,
                        consistency=args.consistency)
    result = Trainer(config, callbacks=[Printer()]).fit(train, valid, metadata={
        "split_speakers": {"train": sorted(set(train.speaker)), "valid": sorted(set(valid.speaker))}})
    print(f"seed {seed}: best epoch {result.best_epoch}, valid window AUC "
          f"{result.detector.metadata['best_valid_auc']:.4f} ({result.seconds:.0f} s)", flush=True)
    return Run(seed, result, clips, train, valid, config)


def window_metrics(model: ClipModel, pairs: PairDataset) -> dict[str, Any]:
    """Detection metrics of the clip model (every run's mean similarity, its Beta mixture) on window pairs."""
    p = model.posterior_abnormal(model.similarity(pairs))
    return detection_metrics(pairs.is_abnormal, p, p >= model.threshold)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fer-data", type=Path, default=Path("../shared/data/fer2013/fer2013.npz"))
    ap.add_argument("--ravdess", type=Path, default=Path("../shared/data/ravdess"))
    ap.add_argument("--fer-model", type=Path, default=Path("checkpoints/fer_expression.pt"))
    ap.add_argument("--out", type=Path, default=Path("checkpoints/clip.pt"))
    ap.add_argument("--results", type=Path, default=Path("docs/clip_results.json"))
    ap.add_argument("--cache", default="/tmp/clipwork/ravdess_tracks_v2.pkl",
                    help="pickle of the RAVDESS voice tracks (outside the repository; one file per seed, "
                         "named with it); '' for none")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=1, help="faces per training voice window (clean and degraded)")
    ap.add_argument("--labels", choices=("classes", "emotions"), default="classes",
                    help="what SIR-HCL's losses train on: the 3 valence classes, or the 7 shared emotions")
    ap.add_argument("--match", choices=corpus.MATCHES, default=None,
                    help="normal training faces share the voice's valence or its emotion (default: emotion with "
                         "--labels emotions, else valence); validation and held-apart pairs always match valence")
    ap.add_argument("--contamination", type=float, default=0.01, help="share of validation windows the gate rejects")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first run (run k uses seed + k)")
    ap.add_argument("--runs", type=int, default=1,
                    help="train the recipe this many times (seeds --seed, --seed + 1, ...); the clip model averages "
                         "their similarities window by window. Run k > 0 is written beside --out as "
                         "<out stem>_seed<seed>.pt; the gate and the metadata are the first run's, and the Beta "
                         "mixture is refitted on the mean similarity of the first run's training pairs")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--limit", type=int, default=0, help="use only this many clips per part (smoke runs)")
    ap.add_argument("--consistency", type=float, default=0.0,
                    help="weight of the twin-consistency term: each training voice window and the same window "
                         "after an AAC round trip are asked for the same embedding (0: off)")
    ap.add_argument("--twin-bit-rates", type=int, nargs="+", default=[64000, 96000, 128000],
                    help="AAC bit rates (bit/s) of the voice twins, one drawn per take")
    args = ap.parse_args()
    args.match = args.match or ("emotion" if args.labels == "emotions" else "valence")
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1.")
    started = time.perf_counter()

    if args.fer_model.resolve().parent != args.out.resolve().parent:
        raise SystemExit("--fer-model must sit in the same folder as --out (the clip checkpoint finds it there).")
    fer_sha = file_sha256(args.fer_model)
    face_id = seq.face_extractor_id(fer_sha)
    expression = ExpressionModel.load(args.fer_model, int8=False)
    pools = corpus.fer_pools(args.fer_data)
    runs = [train_run(args, args.seed + k, expression, face_id, pools) for k in range(args.runs)]
    first = runs[0]
    det, train, valid, clips = first.detector, first.train, first.valid, first.clips
    valid_degraded = corpus.window_pairs(clips["valid_degraded"], pools["valid"], expression, face_id, 1,
                                         args.seed + 7, "clip-valid-degraded")

    tf, tv = det.embed(train)
    vf, vv = det.embed(valid)
    df, dv = det.embed(valid_degraded)
    gate = KnnGate.fit({"face": tf, "voice": tv}, {"face": np.r_[vf, df], "voice": np.r_[vv, dv]},
                       contamination=args.contamination, seed=args.seed)
    neutral_face = np.concatenate([f for f, lab in zip(train.face, train.face_label) if lab == 1]).mean(0)
    neutral_voice = np.concatenate([v for v, lab in zip(train.voice, train.voice_label) if lab == 1]).mean(0)
    clip_meta = {
        "fer_file": args.fer_model.name, "fer_sha256": fer_sha, "gate": gate.to_dict(),
        "population": {"face": neutral_face.tolist(), "voice": neutral_voice.tolist()},
        "windows": {"window_s": seq.WINDOW_S, "hop_s": seq.HOP_S, "face_fps": seq.FACE_FPS},
        "training_labels": args.labels,
        **({"emotions": {"names": list(corpus.CLIP_EMOTIONS), "valence": FER_TO_VALENCE.tolist()}}
           if args.labels == "emotions" else {}),
        "data": {"faces": "FER2013 Training (train), PublicTest even positions (valid), odd positions (held apart)",
                 "voices": "RAVDESS speech actors 1-14 (train), 15-17 (valid), 18-20 (held apart); training and gate "
                           "also use a degraded copy of each take (band limit, noise 15-40 dB SNR, gain)",
                 "pairs": ("voice window + face of the same valence (normal) or another valence (abnormal), 1:1"
                           + ("; normal training faces show the voice's own emotion" if args.match == "emotion"
                              else ""))},
    }
    det.metadata["clip"] = clip_meta
    det.metadata["dataset"] = "clip: FER2013 faces x RAVDESS voices"
    for file in save_runs(det, [(run.seed, run.detector) for run in runs[1:]], args.out, train):
        print(f"written {file} ({file.stat().st_size / 1e6:.2f} MB)", flush=True)

    scorer = ClipScorer(args.out)
    model = scorer.model
    window_test = corpus.window_pairs(clips["heldout"], pools["heldout"], expression, face_id, 1, args.seed + 2,
                                      "clip-heldout")
    results = {
        "training": {"labels": args.labels, "match": args.match, "runs": [{
            "seed": run.seed, "n_train_pairs": len(run.train), "n_valid_pairs": len(run.valid),
            "best_epoch": run.result.best_epoch, "epochs_run": len(run.result.history),
            "seconds": round(run.result.seconds, 1), "config": run.config.to_dict(), "history": [
                {"epoch": e.epoch, "valid_auc": e.valid_auc, **e.train_losses} for e in run.result.history]}
            for run in runs]},
        "window_level": {"valid_auc_per_run": [run.detector.metadata["best_valid_auc"] for run in runs],
                         "valid": {k: v for k, v in window_metrics(model, valid).items() if k != "per_type"},
                         "heldout": {k: v for k, v in window_metrics(model, window_test).items() if k != "per_type"}},
        "clip_level_features": {
            "valid": clip_level(scorer, corpus.clip_pairings(clips["valid"], pools["valid"], args.seed + 3),
                                pools["valid"], args.seed + 3),
            "heldout": clip_level(scorer, corpus.clip_pairings(clips["heldout"], pools["heldout"], args.seed + 4),
                                  pools["heldout"], args.seed + 4),
            "heldout_degraded_voice": clip_level(
                scorer, corpus.clip_pairings(clips["heldout_degraded"], pools["heldout"], args.seed + 4),
                pools["heldout"], args.seed + 4)},
        "gate": {"thresholds": gate.thresholds, "k": gate.k, "n_prototypes": len(gate.prototypes["face"]),
                 "contamination": gate.contamination},
        "baseline": {"valid": baseline_experiment(scorer, clips["valid"], pools["valid"], args.seed + 5),
                     "heldout": baseline_experiment(scorer, clips["heldout"], pools["heldout"], args.seed + 6)},
        "fer_sha256": fer_sha, "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_text(args.results, json.dumps(results, indent=1, default=float))
    short = {k: results["clip_level_features"][k]["auc"] for k in ("valid", "heldout")}
    print(f"clip-level AUC (feature level): {short}; window-level AUC: validation "
          f"{results['window_level']['valid']['auc']:.4f}, held apart {results['window_level']['heldout']['auc']:.4f}")
    print(f"baseline (held apart): {results['baseline']['heldout']['pooled']}")
    print(f"results written to {args.results} in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
