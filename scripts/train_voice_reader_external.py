"""Train a voice reader on TESS + EmoDB only (never RAVDESS) and write its checkpoint.

    OMP_NUM_THREADS=1 python scripts/train_voice_reader_external.py --data ../shared/data \
        --out checkpoints/voice_reader_external.pt

This is the reader the RAVDESS detector may use as a voice front end (``voice_features="reader:<path>"`` of the
RAVDESS loader) and the voice side of the ``disagreement`` baseline: no RAVDESS actor is ever in its training or
selection, so every speaker fold of the RAVDESS cross-validation is unseen by it. Split: the leave-RAVDESS-out run
of the readers benchmark (``crossemo_core.benchmark.readers.loco_split``): train TESS (both speakers) + EmoDB
speakers 03-14, validate (epoch kept) on EmoDB speakers 15-16, test on every RAVDESS utterance of actors 1-20.
Same network, augmentations and training loop as the shipped reader (``scripts/train_voice_reader.py``); only the
data and (by default) the epoch budget differ. Writes the checkpoint and ``docs/voice_reader_external.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.cache import json_safe  # noqa: E402
from crossemo_core.benchmark.readers import loco_split  # noqa: E402
from crossemo_core.paths import REPO, atomic_write  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig, add_augmentations_argument  # noqa: E402
from crossemo_core.readers.voice import SINGLE_FRAME_FRONTEND  # noqa: E402
from crossemo_core.readers.voice_corpora import list_corpora  # noqa: E402
from crossemo_core.readers.voice_training import (VoiceTrainConfig, evaluate_mels, fit_prosody_view,  # noqa: E402
                                                  prosody_cache, spectrogram_cache, train_voice_reader)
from crossemo_core.settings import cache_root  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding ravdess/, tess/, emodb/")
    p.add_argument("--out", type=Path, default=REPO / "checkpoints" / "voice_reader_external.pt")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    add_augmentations_argument(p)
    p.add_argument("--work", type=Path, default=cache_root() / "voice_reader_runs", help="per-epoch resume state")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "voice_reader_external.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    frontend = SINGLE_FRAME_FRONTEND
    utts = list_corpora(args.data)
    split = loco_split(utts, "ravdess")
    assert not any(u.corpus == "ravdess" for u in split.train + split.valid)
    cache = spectrogram_cache(utts, frontend, AugmentConfig(), seed=0,
                              progress=lambda i, n: print(f"spectrograms {i}/{n}", flush=True) if i == n else None)
    prosody = prosody_cache(utts, AugmentConfig(), seed=0,
                            progress=lambda i, n: print(f"prosody statistics {i}/{n}", flush=True) if i == n else None)
    config = VoiceTrainConfig(epochs=args.epochs, patience=args.patience, seed=args.seed,
                              augmentations=tuple(args.augmentations))
    reader, record = train_voice_reader(
        split.train, split.valid, cache, frontend, config, resume=args.work / f"external-seed{args.seed}.pt",
        on_epoch=lambda row: print(f"epoch {row['epoch']}: loss {row['loss']:.3f}, valid valence UAR "
                                   f"{row['valid_valence_uar']:.3f} ({row['seconds']:.0f} s)", flush=True))
    fit_prosody_view(reader, split.train, split.valid, cache, prosody)
    test = evaluate_mels(reader, [cache[u.key][0][1] for u in split.test], split.test,
                         prosody_rows=np.stack([prosody[u.key][0] for u in split.test]))
    reader.meta["split"] = {"train": "TESS OAF+YAF, EmoDB speakers 03-14", "valid": "EmoDB speakers 15-16",
                            "test": "RAVDESS actors 1-20 (all of them; none seen in training or selection)",
                            "n_train": len(split.train), "n_valid": len(split.valid), "n_test": len(split.test)}
    reader.meta["test"] = {"clean": test}
    reader.save(args.out)
    summary = {"command": "python " + " ".join(sys.argv), "seed": args.seed, "best_epoch": record.best_epoch,
               "valid_valence_uar": record.best_valid_uar, "seconds": record.seconds, "history": record.history,
               "test_ravdess_1_20": test}
    atomic_write(args.json, json.dumps(json_safe(summary), indent=1).encode())
    print(f"best epoch {record.best_epoch}, valid valence UAR {record.best_valid_uar:.3f}; RAVDESS 1-20: valence "
          f"UAR {test['valence_uar']:.3f} (network {test['valence_uar_network']:.3f}), emotion UAR "
          f"{test['emotion_uar']:.3f}, arousal UAR {test['arousal_uar']:.3f} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
