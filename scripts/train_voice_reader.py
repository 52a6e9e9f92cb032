"""Train the shipped voice reader (crossemo_core.readers.voice) and write its checkpoint.

    python scripts/train_voice_reader.py --data ../shared/data --out checkpoints/voice_reader.pt --seeds 0 1 2

Data: RAVDESS actors 1-14 + TESS (both speakers) + EmoDB (8 speakers) train; RAVDESS actors 15-17 + EmoDB speakers
15 and 16 validate (the epoch kept, and the seed chosen, by valence UAR there); RAVDESS actors 18-20 are never used
for training or selection (they are also the clip model's held-apart actors), and are reported as the test. Every
training utterance is used clean and in augmented copies (crossemo_core.readers.augment); the prosody view and its
weight (an even mix) are fitted after the network. Each seed's state is
saved after every epoch under --work, so an interrupted run resumes where it stopped. Prints and writes
``docs/voice_reader.json`` (aggregate numbers only).

    python scripts/train_voice_reader.py --data ../shared/data --prosody-only --prosody-features egemaps

refits only the prosody view of the checkpoint at --out (its network is kept as it is) on the same split, with
the feature set --prosody-features (crossemo_core.readers.prosody.PROSODY_FEATURES), measures it on RAVDESS
actors 18-20 and writes the checkpoint and ``docs/voice_reader.json`` again (the network's training record kept).
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
from crossemo_core.benchmark.readers import degraded_mels, ravdess_actor_split  # noqa: E402
from crossemo_core.paths import REPO, atomic_write  # noqa: E402
from crossemo_core.settings import cache_root  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig, add_augmentations_argument  # noqa: E402
from crossemo_core.readers.prosody import PROSODY_DEFAULT, PROSODY_FEATURES  # noqa: E402
from crossemo_core.readers.voice import FrontendConfig, VoiceReader  # noqa: E402
from crossemo_core.readers.voice_corpora import list_corpora  # noqa: E402
from crossemo_core.readers.voice_training import (VoiceTrainConfig, add_training_option_arguments,  # noqa: E402
                                                  evaluate_mels, fit_prosody_view, prosody_cache, spectrogram_cache,
                                                  train_voice_reader, training_options)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="folder holding ravdess/, tess/, emodb/")
    p.add_argument("--out", type=Path, default=REPO / "checkpoints" / "voice_reader.pt")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--epochs", type=int, default=VoiceTrainConfig.epochs)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", type=Path, default=cache_root() / "voice_reader_runs", help="per-epoch resume state")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "voice_reader.json")
    p.add_argument("--prosody-features", choices=PROSODY_FEATURES, default=PROSODY_DEFAULT)
    add_augmentations_argument(p)
    add_training_option_arguments(p)
    p.add_argument("--prosody-only", action="store_true",
                   help="refit only the prosody view of the checkpoint at --out, keeping its network")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    frontend = FrontendConfig()
    utts = list_corpora(args.data)
    split = ravdess_actor_split(utts)
    cache = spectrogram_cache(utts, frontend, AugmentConfig(), seed=0,
                              progress=lambda i, n: print(f"spectrograms {i}/{n}", flush=True) if i == n else None)
    prosody = prosody_cache(utts, AugmentConfig(), seed=0, features=args.prosody_features,
                            progress=lambda i, n: print(f"prosody features {i}/{n}", flush=True) if i == n else None)
    if args.prosody_only:
        return refit_prosody(args, split, cache, prosody)
    runs = []
    for seed in args.seeds:
        config = VoiceTrainConfig(epochs=args.epochs, seed=seed, augmentations=tuple(args.augmentations),
                                  **training_options(args))
        reader, record = train_voice_reader(
            split.train, split.valid, cache, frontend, config, resume=args.work / f"seed{seed}.pt",
            on_epoch=lambda row: print(f"seed {seed} epoch {row['epoch']}: loss {row['loss']:.3f}, valid valence "
                                       f"UAR {row['valid_valence_uar']:.3f} ({row['seconds']:.0f} s)", flush=True))
        fit_prosody_view(reader, split.train, split.valid, cache, prosody, features=args.prosody_features,
                         speaker_balance=config.speaker_balance)
        test_clean = evaluate_mels(reader, [cache[u.key][0][1] for u in split.test], split.test,
                                   prosody_rows=np.stack([prosody[u.key][0] for u in split.test]))
        test_degraded = evaluate_mels(reader, degraded_mels(split.test, cache), split.test,
                                      prosody_rows=np.stack([prosody[u.key][1] for u in split.test]))
        runs.append({"seed": seed, "best_epoch": record.best_epoch, "valid_valence_uar": record.best_valid_uar,
                     "prosody_weight": reader.prosody_weight,
                     "test_clean": test_clean, "test_degraded": test_degraded, "seconds": record.seconds,
                     "reader": reader})
    chosen = max(runs, key=lambda r: r["valid_valence_uar"])
    reader = chosen["reader"]
    reader.meta["split"] = {"train": "RAVDESS actors 1-14, TESS OAF+YAF, EmoDB speakers 03-14",
                            "valid": "RAVDESS actors 15-17, EmoDB speakers 15-16", "test": "RAVDESS actors 18-20",
                            "n_train": len(split.train), "n_valid": len(split.valid), "n_test": len(split.test)}
    reader.meta["seed_choice"] = {str(r["seed"]): r["valid_valence_uar"] for r in runs}
    reader.meta["test"] = {"clean": chosen["test_clean"], "degraded": chosen["test_degraded"]}
    reader.save(args.out)
    summary = {"command": "python " + " ".join(sys.argv), "chosen_seed": chosen["seed"],
               "runs": [{k: v for k, v in r.items() if k != "reader"} for r in runs]}
    atomic_write(args.json, json.dumps(json_safe(summary), indent=1).encode())
    for r in runs:
        print(f"seed {r['seed']}: best epoch {r['best_epoch']}, valid valence UAR {r['valid_valence_uar']:.3f}, "
              f"test (RAVDESS 18-20) valence UAR {r['test_clean']['valence_uar']:.3f} clean / "
              f"{r['test_degraded']['valence_uar']:.3f} degraded, emotion UAR {r['test_clean']['emotion_uar']:.3f}, "
              f"arousal UAR {r['test_clean']['arousal_uar']:.3f}")
    print(f"chosen seed {chosen['seed']} (validation only) -> {args.out}")
    return 0


def _measure(reader: VoiceReader, split, cache, prosody) -> tuple[dict, dict]:
    clean = evaluate_mels(reader, [cache[u.key][0][1] for u in split.test], split.test,
                          prosody_rows=np.stack([prosody[u.key][0] for u in split.test]))
    degraded = evaluate_mels(reader, degraded_mels(split.test, cache), split.test,
                             prosody_rows=np.stack([prosody[u.key][1] for u in split.test]))
    return clean, degraded


def refit_prosody(args: argparse.Namespace, split, cache, prosody) -> int:
    """--prosody-only: the checkpoint's network kept, its prosody view refitted with --prosody-features."""
    reader = VoiceReader.load(args.out)
    before = reader.meta.get("test", {}).get("clean", {}).get("valence_uar")
    fit_prosody_view(reader, split.train, split.valid, cache, prosody, features=args.prosody_features,
                     speaker_balance=bool(reader.meta.get("training", {}).get("speaker_balance", False)))
    clean, degraded = _measure(reader, split, cache, prosody)
    reader.meta["test"] = {"clean": clean, "degraded": degraded}
    reader.meta["prosody_refit"] = {"command": "python " + " ".join(sys.argv), "features": args.prosody_features,
                                    "valence_uar_before": before}
    reader.save(args.out)
    summary = json.loads(args.json.read_text()) if args.json.is_file() else {"runs": [{}]}
    chosen = next((r for r in summary["runs"] if r.get("seed") == summary.get("chosen_seed")), summary["runs"][0])
    chosen.update(test_clean=clean, test_degraded=degraded, prosody_features=args.prosody_features)
    summary["prosody_refit_command"] = "python " + " ".join(sys.argv)
    atomic_write(args.json, json.dumps(json_safe(summary), indent=1).encode())
    print(f"prosody view ({args.prosody_features}) refitted: RAVDESS 18-20 valence UAR {clean['valence_uar']:.3f} "
          f"clean (was {before if before is None else round(before, 3)}), {degraded['valence_uar']:.3f} degraded; prosody alone "
          f"{clean['valence_uar_prosody']:.3f}, network alone {clean['valence_uar_network']:.3f} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
