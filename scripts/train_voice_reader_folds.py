"""Train one voice reader per RAVDESS cross-validation fold: TESS + EmoDB + that fold's RAVDESS training actors.

    OMP_NUM_THREADS=1 python scripts/train_voice_reader_folds.py --data ../shared/data --seeds 0 1 2

For seed ``s`` and fold ``k`` the RAVDESS actors are split exactly as ``speaker_folds(..., n_folds=5, seed=s)[k]``
splits them for the detector (``crossemo_core.experiment.split_for``): the reader trains on TESS, EmoDB speakers
03-14 and the fold's 12 training actors, keeps the epoch with the best valence UAR on the fold's 4 validation
actors plus EmoDB 15-16, and never sees the fold's 4 test actors. Each reader is written to
``OUT_DIR/s{seed}-f{fold}.pt`` (outside git: ``~/.cache/crossemo/fold_readers`` by default); the RAVDESS loader
and the benchmark use them with ``--voice-features reader-folds:OUT_DIR`` (each run loads its own fold's reader).
A cheaper training than the shipped reader's (default 10 epochs, one augmented copy per utterance per epoch,
patience 4), so 15 readers fit in about half an hour on one core. Writes ``docs/voice_reader_folds.json`` (each
reader's valence / emotion / arousal UAR on its fold's test actors; aggregate numbers only).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.cache import json_safe  # noqa: E402
from crossemo_core.benchmark.readers import VALID_SPEAKERS  # noqa: E402
from crossemo_core.data.protocol import speaker_folds  # noqa: E402
from crossemo_core.paths import REPO, atomic_write  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig, add_augmentations_argument  # noqa: E402
from crossemo_core.readers.voice import SINGLE_FRAME_FRONTEND  # noqa: E402
from crossemo_core.readers.voice_corpora import list_corpora, ravdess_actor  # noqa: E402
from crossemo_core.readers.voice_training import (VoiceTrainConfig, evaluate_mels, fit_prosody_view,  # noqa: E402
                                                  prosody_cache, spectrogram_cache, train_voice_reader)
from crossemo_core.settings import cache_root  # noqa: E402

RAVDESS_ACTORS = tuple(range(1, 21))


def fold_actors(seed: int, fold: int, n_folds: int = 5) -> dict[str, set[int]]:
    """The RAVDESS actors of each part of fold ``fold`` of seed ``seed``, as the detector's split makes them."""
    names = np.array([f"actor_{a:02d}" for a in RAVDESS_ACTORS])
    parts = speaker_folds(names, n_folds=n_folds, seed=seed)[fold]
    return {part: {int(names[i].split("_")[1]) for i in idx} for part, idx in parts.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding ravdess/, tess/, emodb/")
    p.add_argument("--out-dir", type=Path, default=cache_root() / "fold_readers")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--views", type=int, default=1)
    p.add_argument("--threads", type=int, default=1)
    add_augmentations_argument(p)
    p.add_argument("--json", type=Path, default=REPO / "docs" / "voice_reader_folds.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    frontend = SINGLE_FRAME_FRONTEND
    utts = list_corpora(args.data)
    cache = spectrogram_cache(utts, frontend, AugmentConfig(), seed=0)
    prosody = prosody_cache(utts, AugmentConfig(), seed=0)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict = {"command": "python " + " ".join(sys.argv), "runs": []}
    if args.json.is_file():
        summary["runs"] = [r for r in json.loads(args.json.read_text()).get("runs", [])]
    for seed in args.seeds:
        for fold in range(args.folds):
            out = args.out_dir / f"s{seed}-f{fold}.pt"
            if out.is_file():
                print(f"seed {seed} fold {fold}: {out} exists, kept", flush=True)
                continue
            t0 = time.perf_counter()
            actors = fold_actors(seed, fold, args.folds)
            rav = [u for u in utts if u.corpus == "ravdess"]
            train = [u for u in utts if u.corpus != "ravdess" and u.speaker not in VALID_SPEAKERS.get(u.corpus, set())]
            train += [u for u in rav if ravdess_actor(u) in actors["train"]]
            valid = [u for u in utts if u.speaker in VALID_SPEAKERS.get("emodb", set())]
            valid += [u for u in rav if ravdess_actor(u) in actors["valid"]]
            test = [u for u in rav if ravdess_actor(u) in actors["test"]]
            assert not {ravdess_actor(u) for u in train + valid if u.corpus == "ravdess"} & actors["test"]
            config = VoiceTrainConfig(epochs=args.epochs, patience=args.patience, views=args.views, seed=seed,
                                      augmentations=tuple(args.augmentations))
            reader, record = train_voice_reader(train, valid, cache, frontend, config)
            fit_prosody_view(reader, train, valid, cache, prosody)
            metrics = evaluate_mels(reader, [cache[u.key][0][1] for u in test], test,
                                    prosody_rows=np.stack([prosody[u.key][0] for u in test]))
            reader.meta["split"] = {"train": f"TESS, EmoDB 03-14, RAVDESS actors {sorted(actors['train'])}",
                                    "valid": f"EmoDB 15-16, RAVDESS actors {sorted(actors['valid'])}",
                                    "test": f"RAVDESS actors {sorted(actors['test'])} (never seen)",
                                    "seed": seed, "fold": fold, "n_folds": args.folds,
                                    "fold_readers": True}
            reader.meta["test"] = {"clean": metrics}
            reader.save(out)
            row = {"seed": seed, "fold": fold, "test_actors": sorted(actors["test"]), "best_epoch": record.best_epoch,
                   "valid_valence_uar": record.best_valid_uar, "seconds": time.perf_counter() - t0,
                   **{k: metrics[k] for k in ("valence_uar", "valence_uar_network", "emotion_uar", "arousal_uar")}}
            summary["runs"] = [r for r in summary["runs"] if (r["seed"], r["fold"]) != (seed, fold)] + [row]
            atomic_write(args.json, json.dumps(json_safe(summary), indent=1).encode())
            print(f"seed {seed} fold {fold}: best epoch {record.best_epoch}, test actors {sorted(actors['test'])}: "
                  f"valence UAR {metrics['valence_uar']:.3f}, emotion UAR {metrics['emotion_uar']:.3f} "
                  f"({row['seconds']:.0f} s) -> {out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
