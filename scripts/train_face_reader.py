"""Build the face reader (crossemo_core.readers.face) from FER2013 Training, then measure it. One command rebuilds
everything shipped:

    OMP_NUM_THREADS=1 nice -n 5 python scripts/train_face_reader.py --data ../shared/data --threads 1

Stages (``--stages``, all by default, in this order):

``cnn``         the expression network ``checkpoints/fer_expression_v2.pt`` on FER2013 Training *minus* a validation
                split (seeded); its state is saved after every epoch under ``--cache``, so an interrupted run resumes
                from its last finished epoch when the same command runs again.
``blendshapes`` MediaPipe's 52 blendshapes of the validation split, PublicTest and CK+48 (48x48 images upscaled and
                padded, :func:`crossemo_core.readers.face.fer_canvas`), cached under ``--cache`` by content hash.
``stacker``     on the validation split only (images the network never trained on): 5-fold cross-validation compares
                the network alone (flip TTA or not, temperature-scaled) with a logistic-regression stacker over
                [network logits, blendshapes]; the better one by validation 7-class accuracy is fitted on the whole
                split and written to ``checkpoints/face_reader.pt``.
``small``       the small-face stacker ``checkpoints/face_reader_small.pt`` for the small-face network
                ``checkpoints/fer_expression_small.pt`` (made from ``fer_expression_v2.pt`` by
                ``scripts/face_low_res_finetune.py``, command in ``checkpoints/face_reader.md``): the same search,
                network-only, on the validation split's faces each shrunk to a random side of 20-44 pixels and
                enlarged back, as small faces reach the reader.
``evaluate``    FER2013 PublicTest and CK+48 (never used for a choice), PublicTest shrunk to 44, 40, 32 and 24 pixels
                with and without the small-face network, blendshape detection rate and latency per frame ->
                ``--report`` (default ``docs/readers_face.json``; aggregates only, with the command that made them).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from crossemo_core.clip.expression import (FER_SIZE, FER_TO_VALENCE, ExpressionModel, ExpressionNet,  # noqa: E402
                                           softmax, train_epoch)
from crossemo_core.readers.face import (BLENDSHAPE_NAMES, DEFAULT_SMALL_EXPRESSION,  # noqa: E402
                                        DEFAULT_SMALL_STACKER, FACE_EMOTIONS, LANDMARKER_SHA256, CropReadings,
                                        FaceReader, FaceStacker, Landmarker, LogisticHead)
from crossemo_core.paths import atomic_write_text, atomic_writer  # noqa: E402
from crossemo_core.readers.reading import unweighted_average_recall, valence_from_emotions  # noqa: E402

SMALL_FIT_SIDES = (20, 44)
"""The small-face stacker is fitted on the validation faces each shrunk to a random side in this range (pixels, both
included) and enlarged back: the crop scales (0.42-0.92) the small-face network reads."""
SMALL_EVAL_SIDES = (48, 44, 40, 32, 24)
VALIDATION_SIZE = 3000
"""FER2013 Training images held out of the network's training: every choice (TTA, stacker, its regularisation) is
made on them, and the stacker is fitted on them."""


def load_fer2013(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FER2013 under the shared data folder ``data``: ``(N, 48, 48)`` uint8 faces, ``(N,)`` int64 labels (FER codes,
    :data:`FACE_EMOTIONS` order) and ``(N,)`` usage strings (Training, PublicTest, PrivateTest)."""
    fer = np.load(data / "fer2013" / "fer2013.npz")
    return fer["images"], fer["labels"].astype(np.int64), fer["usage"].astype(str)


def through_sides(images: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """``(N, 48, 48)`` uint8 faces, each shrunk to its side in ``sides`` ``(N,)`` pixels and enlarged back to 48 (PIL
    bilinear): how a face that small reaches the reader, an enlarged, blurred crop."""
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(a).resize((int(s), int(s)), Image.BILINEAR).resize((48, 48),
                                                                                                   Image.BILINEAR))
                     for a, s in zip(images, sides)])


def validation_split(usage: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of FER2013 Training rows ``(train, validation)``: a seeded random :data:`VALIDATION_SIZE` hold-out."""
    training = np.flatnonzero(usage == "Training")
    order = np.random.default_rng(seed).permutation(training)
    return np.sort(order[VALIDATION_SIZE:]), np.sort(order[:VALIDATION_SIZE])


# ------------------------------------------------------------------------------------------------------ stage: cnn
def training_loss(train_labels: np.ndarray) -> torch.nn.CrossEntropyLoss:
    """The network's loss: cross-entropy with square-root inverse-frequency class weights of ``train_labels`` (FER
    classes) and label smoothing 0.1."""
    counts = np.bincount(train_labels, minlength=7)
    class_weights = torch.tensor((counts.sum() / (7 * counts)) ** 0.5, dtype=torch.float32)
    return torch.nn.CrossEntropyLoss(weight=class_weights, label_smoothing=0.1)


def save_training_state(path: Path, settings: dict, parts: dict[str, Any], generator: torch.Generator,
                        records: dict[str, Any]) -> None:
    """Write a training run's state after an epoch (atomically): its ``settings`` (JSON), the ``state_dict`` of each
    of ``parts`` (network, optimiser, scheduler, ...) under its name, the shuffling ``generator`` and ``records``."""
    with atomic_writer(path) as f:
        torch.save({"settings": json.dumps(settings), **{name: part.state_dict() for name, part in parts.items()},
                    "generator": generator.get_state(), **records}, f)


def load_training_state(path: Path, settings: dict, parts: dict[str, Any], generator: torch.Generator,
                        label: str = "") -> dict[str, Any] | None:
    """Restore ``parts`` and ``generator`` from a :func:`save_training_state` file and return it (its records are
    the caller's to read); ``None`` when there is none. A run with other ``settings`` stops the script."""
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    if json.loads(state["settings"]) != settings:
        raise SystemExit(f"{label}{path} holds a run with other settings ({state['settings']}); delete it or pass "
                         "another --cache to start afresh")
    for name, part in parts.items():
        part.load_state_dict(state[name])
    generator.set_state(state["generator"])
    return state


def train_cnn(images: np.ndarray, labels: np.ndarray, train_idx: np.ndarray, valid_idx: np.ndarray,
              out: Path, state_path: Path, args: argparse.Namespace) -> ExpressionModel:
    """Train :class:`ExpressionNet` (``args.widths``) for ``args.epochs`` epochs, resuming from ``state_path``."""
    settings = {"widths": list(args.widths), "epochs": args.epochs, "batch": args.batch, "lr": args.lr,
                "seed": args.seed, "n_train": int(len(train_idx))}
    x_tr = torch.from_numpy(images[train_idx].astype(np.float32))
    y_tr = torch.from_numpy(labels[train_idx])
    torch.manual_seed(args.seed)
    net = ExpressionNet(tuple(args.widths)).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=5e-4)
    steps_per_epoch = len(train_idx) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.epochs * steps_per_epoch,
                                                pct_start=0.15)
    loss_fn = training_loss(labels[train_idx])
    gen = torch.Generator().manual_seed(args.seed)
    history: list[dict] = []
    seconds = 0.0
    start_epoch = 1
    parts = {"net": net, "opt": opt, "sched": sched}
    state = load_training_state(state_path, settings, parts, gen, "cnn: ")
    if state is not None:
        history, seconds = json.loads(state["history"]), float(state["seconds"])
        start_epoch = len(history) + 1
        if start_epoch > args.epochs and out.is_file():
            print(f"cnn: {state_path} finished all {args.epochs} epochs; keeping {out}", flush=True)
            return ExpressionModel.load(out, int8=False)
        print(f"cnn: resuming after epoch {len(history)} from {state_path}", flush=True)
    model = ExpressionModel(net)
    print(f"cnn: {len(train_idx)} training images, {len(valid_idx)} validation; widths {args.widths}, "
          f"{sum(p.numel() for p in net.parameters()):,} parameters", flush=True)
    for epoch in range(start_epoch, args.epochs + 1):
        t0 = time.perf_counter()
        loss = train_epoch(net, opt, sched, loss_fn, x_tr, y_tr, gen, args.batch)
        valid_acc = float((model.logits(images[valid_idx]).argmax(1) == labels[valid_idx]).mean())
        seconds += time.perf_counter() - t0
        history.append({"epoch": epoch, "train_loss": round(loss, 4),
                        "validation_accuracy": round(valid_acc, 4)})
        print(f"cnn: epoch {epoch:2d}/{args.epochs} loss {loss:.4f} validation accuracy "
              f"{valid_acc:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
        save_training_state(state_path, settings, parts, gen, {"history": json.dumps(history), "seconds": seconds})
    model.meta = {"trained_on": f"FER2013 Training minus a seeded {len(valid_idx)}-image validation split "
                                f"({len(train_idx)} images)",
                  "history": history, "settings": settings, "train_seconds": round(seconds, 1),
                  "torch": torch.__version__}
    model.save(out)
    print(f"cnn: written {out} ({out.stat().st_size / 1e6:.2f} MB), {seconds / 60:.1f} min of training", flush=True)
    return model


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------- stage: blendshapes
def cached_blendshapes(crops: np.ndarray, landmarker: Landmarker | None, cache: Path, name: str) -> np.ndarray:
    """``(N, 52)`` blendshapes of ``(N, 48, 48)`` crops (NaN rows: no face), cached by the crops' content hash."""
    key = hashlib.sha256(np.ascontiguousarray(crops).tobytes() + LANDMARKER_SHA256.encode()).hexdigest()[:20]
    path = cache / f"blendshapes-{key}.npy"
    if path.is_file():
        return np.load(path)
    if landmarker is None:
        raise SystemExit(f"blendshapes of {name} are not cached yet: run the 'blendshapes' stage first")
    t0 = time.perf_counter()
    out = landmarker.blendshapes_of_crops(crops)
    print(f"blendshapes: {name}, {len(crops)} images, face found in {np.mean(~np.isnan(out).any(1)):.3f} "
          f"({(time.perf_counter() - t0) / len(crops) * 1000:.1f} ms an image)", flush=True)
    with atomic_writer(path) as f:
        np.save(f, out)
    return out


# -------------------------------------------------------------------------------------------------- stage: stacker
def scores(emotion_true: np.ndarray, emotion_p: np.ndarray) -> dict[str, float]:
    """7-class accuracy, emotion UAR, valence accuracy and UAR of ``(N, 7)`` probabilities against FER labels (the
    valence read is the top of the summed valence probabilities, as :class:`Reading` reports it)."""
    pred = emotion_p.argmax(1)
    v_true, v_pred = FER_TO_VALENCE[emotion_true], valence_from_emotions(FACE_EMOTIONS, emotion_p).argmax(1)
    return {"accuracy": float(np.mean(pred == emotion_true)),
            "emotion_uar": unweighted_average_recall(emotion_true, pred, 7),
            "valence_accuracy": float(np.mean(v_pred == v_true)),
            "valence_uar": unweighted_average_recall(v_true, v_pred, 3)}


def selection_score(s: dict[str, float]) -> float:
    """What the validation choice maximises: the mean of the two FER targets, 7-class accuracy and valence UAR."""
    return (s["accuracy"] + s["valence_uar"]) / 2


L2_GRID = (1e-3, 1e-2, 1e-1)
CLASS_POWER_GRID = (0.0, 0.5, 1.0)
N_FOLDS = 5


def cross_validate(logits: np.ndarray, blendshapes: np.ndarray | None, labels: np.ndarray, l2: float,
                   class_power: float, folds: np.ndarray) -> np.ndarray:
    """Out-of-fold ``(N, 7)`` probabilities of a stacker (network-only when ``blendshapes`` is None)."""
    out = np.zeros((len(labels), 7))
    has = np.zeros(len(labels), bool) if blendshapes is None else ~np.isnan(blendshapes).any(1)
    for k in range(N_FOLDS):
        fit, held = folds != k, folds == k
        network_only = LogisticHead.fit(logits[fit], labels[fit], 7, l2, class_power)
        with_bs = None if blendshapes is None else LogisticHead.fit(
            np.hstack([logits, blendshapes])[fit & has], labels[fit & has], 7, l2, class_power)
        out[held] = FaceStacker(network_only, with_bs).predict_proba(logits[held], None if blendshapes is None
                                                                     else blendshapes[held])
    return out


def fit_stacker(model: ExpressionModel, cnn_path: Path, images: np.ndarray, labels: np.ndarray,
                blendshapes: np.ndarray | None, seed: int, out: Path, fitted_on: str = "") -> FaceStacker:
    """Choose (flip TTA, blendshapes or not, L2, class weighting) by 5-fold CV on the validation split, then fit the
    choice on the whole split and save it. ``blendshapes=None``: a network-only stacker."""
    logits = {False: model.logits(images), True: model.mirrored_logits(images)}
    folds = np.random.default_rng(seed).permutation(len(labels)) % N_FOLDS
    table = []
    for tta in (False, True):
        table.append({"flip_tta": tta, "stacker": "none (network argmax)", **scores(labels, softmax(logits[tta]))})
        for use_bs in (False, True) if blendshapes is not None else (False,):
            for l2 in L2_GRID:
                for power in CLASS_POWER_GRID:
                    p = cross_validate(logits[tta], blendshapes if use_bs else None, labels, l2, power, folds)
                    table.append({"flip_tta": tta, "stacker": "logits + blendshapes" if use_bs else "logits",
                                  "l2": l2, "class_power": power, **scores(labels, p)})
                    print("stacker: " + json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                                                    for k, v in table[-1].items()}), flush=True)
    candidates = [row for row in table if "l2" in row]
    best = max(candidates, key=selection_score)
    best_network_only = max((r for r in candidates if r["stacker"] == "logits"), key=selection_score)
    best_with_blendshapes = max((r for r in candidates if r["stacker"] != "logits"), key=selection_score,
                                default=None)
    use_bs, tta = best["stacker"] == "logits + blendshapes", best["flip_tta"]
    has = ~np.isnan(blendshapes).any(1) if blendshapes is not None else np.zeros(len(labels), bool)
    network_only = LogisticHead.fit(logits[tta], labels, 7, best["l2"], best["class_power"])
    with_bs = LogisticHead.fit(np.hstack([logits[tta], blendshapes])[has], labels[has], 7, best["l2"],
                               best["class_power"]) if use_bs else None
    stacker = FaceStacker(network_only, with_bs, meta={
        "expression_sha256": sha256(cnn_path), "expression_file": cnn_path.name, "flip_tta": tta,
        "blendshape_names": list(BLENDSHAPE_NAMES), "landmarker_sha256": LANDMARKER_SHA256,
        "emotions": list(FACE_EMOTIONS), "l2": best["l2"], "class_power": best["class_power"],
        "fitted_on": f"FER2013 Training validation split ({len(labels)} images, seed {seed}; "
                     f"{int(has.sum())} with blendshapes){fitted_on}",
        "selection": "5-fold CV on the validation split, max of (7-class accuracy + valence UAR) / 2",
        "chosen": best, "best_network_only": best_network_only, "best_with_blendshapes": best_with_blendshapes,
        "cv_table": table})
    stacker.save(out)
    print(f"stacker: chose {best}; written {out}", flush=True)
    return stacker


# ------------------------------------------------------------------------------------------------- stage: evaluate
CKPLUS_EMOTIONS = ("angry", "disgust", "fearful", "happy", "sad", "surprised")
"""CK+48 emotions the reader has (contempt is not one of FER2013's classes: scored in valence only, as negative)."""


def detection_rate(blendshapes: np.ndarray) -> float:
    """Share of ``(N, 52)`` blendshape rows that are not NaN (the landmarker found a face)."""
    return round(float(np.mean(~np.isnan(blendshapes).any(1))), 4)


def per_class_recall(true: np.ndarray, pred: np.ndarray, names: tuple[str, ...]) -> dict[str, float]:
    return {n: round(float(np.mean(pred[true == k] == k)), 4) for k, n in enumerate(names) if np.any(true == k)}


def evaluate_fer(reader: FaceReader, images: np.ndarray, labels: np.ndarray, blendshapes: np.ndarray) -> dict:
    """PublicTest numbers of the shipped reader, and of its network-only path for comparison."""
    full = reader.read_crops(images, blendshapes)
    network_only = reader.read_crops(images, use_blendshapes=False)
    raw_network = softmax(reader.expression.logits(images))
    pred = full.emotions.argmax(1)
    v_true, v_pred = FER_TO_VALENCE[labels], full.valence.argmax(1)
    return {"n": int(len(labels)), **{k: round(v, 4) for k, v in scores(labels, full.emotions).items()},
            "per_class_recall": per_class_recall(labels, pred, FACE_EMOTIONS),
            "valence_per_class_recall": per_class_recall(v_true, v_pred, ("negative", "neutral", "positive")),
            "blendshape_detection_rate": detection_rate(blendshapes),
            "read_with_blendshapes": round(float(full.used_blendshapes.mean()), 4),
            "network_only_stacker": {k: round(v, 4) for k, v in scores(labels, network_only.emotions).items()},
            "network_argmax_no_tta": {k: round(v, 4) for k, v in scores(labels, raw_network).items()}}


def evaluate_small_faces(reader: FaceReader, images: np.ndarray, labels: np.ndarray) -> dict:
    """PublicTest faces shrunk to each of :data:`SMALL_EVAL_SIDES` pixels and enlarged back, read as a video's crop
    of a face that size is (its crop scale side / 48, network-only stackers): by the main network alone and with the
    small-face network taking the crops below its scale."""
    out = {}
    for side in SMALL_EVAL_SIDES:
        faces = through_sides(images, np.full(len(images), side)) if side != FER_SIZE else images
        scale = np.full(len(images), side / FER_SIZE)
        out[f"{side}px"] = {
            "scale": round(side / FER_SIZE, 4),
            "main_network": {k: round(v, 4) for k, v in scores(labels, reader.read_crops(
                faces, use_blendshapes=False).emotions).items()},
            "with_small_face_network": {k: round(v, 4) for k, v in scores(labels, reader.read_crops(
                faces, use_blendshapes=False, scales=scale).emotions).items()}}
    return out


def evaluate_ckplus(reader: FaceReader, data: Mapping[str, np.ndarray], blendshapes: np.ndarray) -> dict:
    """CK+48 (never seen in training): valence UAR over its two valences, 6-emotion UAR with contempt left out."""
    images, emotions = data["images"], data["emotions"].astype(str)
    valence_names = ("negative", "neutral", "positive")
    v_true = np.array([valence_names.index(v) for v in data["valences"].astype(str)])
    full = reader.read_crops(images, blendshapes)
    network_only = reader.read_crops(images, use_blendshapes=False)
    keep = emotions != "contempt"
    e_true = np.array([FACE_EMOTIONS.index(e) for e in emotions[keep]])

    def block(readings: CropReadings) -> dict:
        v_pred, e_pred = readings.valence.argmax(1), readings.emotions[keep].argmax(1)
        return {"valence_uar": round(unweighted_average_recall(v_true, v_pred, 3), 4),
                "valence_accuracy": round(float(np.mean(v_pred == v_true)), 4),
                "emotion6_uar": round(unweighted_average_recall(e_true, e_pred, 7), 4),
                "emotion6_accuracy": round(float(np.mean(e_pred == e_true)), 4),
                "valence_per_class_recall": per_class_recall(v_true, v_pred, valence_names),
                "predicted_neutral_share": round(float(np.mean(v_pred == 1)), 4),
                "emotion_per_class_recall": per_class_recall(e_true, e_pred, FACE_EMOTIONS)}

    return {"n": int(len(images)), "n_subjects": int(len(set(data["subjects"].astype(str)))),
            "n_without_contempt": int(keep.sum()), **block(full),
            "blendshape_detection_rate": detection_rate(blendshapes),
            "read_with_blendshapes": round(float(full.used_blendshapes.mean()), 4),
            "network_only_stacker": block(network_only)}


def measure_latency(reader: FaceReader, repeats: int = 30) -> dict:
    """Seconds per frame of :meth:`FaceReader.read_image` on the bundled 400x400 photo and on a 640x360 frame with
    that photo in it (median of ``repeats``, after one warm-up)."""
    from PIL import Image

    with Image.open(REPO / "assets" / "clips" / "face_photo.jpg") as image:
        photo = np.asarray(image.convert("RGB"))
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[:, 120:520] = photo[20:380]
    out = {}
    for name, rgb in (("photo_400x400", photo), ("frame_640x360", frame)):
        reader.read_image(rgb)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            reader.read_image(rgb)
            times.append(time.perf_counter() - t0)
        out[name + "_median_ms"] = round(1000 * float(np.median(times)), 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--checkpoints", type=Path, default=REPO / "checkpoints")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "crossemo")
    ap.add_argument("--stages", nargs="+", default=["cnn", "blendshapes", "stacker", "small", "evaluate"],
                    choices=["cnn", "blendshapes", "stacker", "small", "evaluate"])
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--widths", type=int, nargs="+", default=[32, 64, 128, 256])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--report", type=Path, default=REPO / "docs" / "readers_face.json",
                    help="where the evaluate stage writes its JSON (default: the shipped reader's docs file)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    images, labels, usage = load_fer2013(args.data)
    train_idx, valid_idx = validation_split(usage, args.seed)
    cnn_path = args.checkpoints / "fer_expression_v2.pt"
    stacker_path = args.checkpoints / "face_reader.pt"
    if "cnn" in args.stages:
        train_cnn(images, labels, train_idx, valid_idx, cnn_path, args.cache / "fer_expression_v2.state.pt", args)
    if not set(args.stages) & {"blendshapes", "stacker", "small", "evaluate"}:
        return 0
    ckplus = np.load(args.data / "ckplus" / "ckplus48.npz")
    test_idx = np.flatnonzero(usage == "PublicTest")
    sets = {"validation": images[valid_idx], "publictest": images[test_idx], "ckplus48": ckplus["images"]}
    landmarker = Landmarker(args.checkpoints / "face_landmarker.task") if "blendshapes" in args.stages else None
    blendshapes = {name: cached_blendshapes(crops, landmarker, args.cache, name) for name, crops in sets.items()} \
        if set(args.stages) & {"blendshapes", "stacker", "evaluate"} else {}
    if "stacker" in args.stages:
        fit_stacker(ExpressionModel.load(cnn_path, int8=False), cnn_path, images[valid_idx], labels[valid_idx],
                    blendshapes["validation"], args.seed, stacker_path)
    small_path, small_stacker_path = args.checkpoints / DEFAULT_SMALL_EXPRESSION.name, \
        args.checkpoints / DEFAULT_SMALL_STACKER.name
    if "small" in args.stages:
        sides = np.random.default_rng(args.seed).integers(SMALL_FIT_SIDES[0], SMALL_FIT_SIDES[1] + 1, len(valid_idx))
        fit_stacker(ExpressionModel.load(small_path, int8=False), small_path,
                    through_sides(images[valid_idx], sides), labels[valid_idx], None, args.seed, small_stacker_path,
                    f", each shrunk to a random side of {SMALL_FIT_SIDES[0]}-{SMALL_FIT_SIDES[1]} px and enlarged back")
    if "evaluate" in args.stages:
        t0 = time.perf_counter()
        reader = FaceReader.load(cnn_path, stacker_path, args.checkpoints / "face_landmarker.task", int8=False,
                                 small_faces=(small_path, small_stacker_path))
        stacker_meta = reader.stacker.meta
        report = {
            "what": "face reader (crossemo_core/readers/face.py): FER2013 PublicTest and CK+48, aggregates only",
            "command": " ".join(["python", "scripts/train_face_reader.py", *sys.argv[1:]]),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "expression_network": {"file": cnn_path.name, "sha256": sha256(cnn_path),
                                   **{k: reader.expression.meta[k] for k in ("settings", "train_seconds", "history")}},
            "stacker": {k: stacker_meta[k] for k in ("fitted_on", "selection", "chosen", "best_network_only",
                                                     "best_with_blendshapes", "flip_tta", "l2", "class_power",
                                                     "heads", "cv_table")},
            "validation_blendshape_detection_rate": detection_rate(blendshapes["validation"]),
            "fer2013_publictest": evaluate_fer(reader, images[test_idx], labels[test_idx], blendshapes["publictest"]),
            "ckplus48": evaluate_ckplus(reader, ckplus, blendshapes["ckplus48"]),
            "fer2013_publictest_small_faces": evaluate_small_faces(reader, images[test_idx], labels[test_idx]),
            "latency_per_frame_1_thread": measure_latency(reader),
            "threads": torch.get_num_threads()}
        report["evaluate_seconds"] = round(time.perf_counter() - t0, 1)
        out = args.report
        atomic_write_text(out, json.dumps(report, indent=1) + "\n")
        print(json.dumps({k: report[k] for k in ("fer2013_publictest", "ckplus48", "fer2013_publictest_small_faces",
                                                 "latency_per_frame_1_thread")},
                         indent=1))
        print(f"evaluate: written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
