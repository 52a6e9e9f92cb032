"""Per-utterance network probabilities of the readers benchmark's voice runs, for the eGeMAPS prosody experiment.

    OMP_NUM_THREADS=1 python scripts/egemaps_network_probs.py --data ../shared/data

The readers benchmark (``benchmark --suite readers``) keeps only each run's metrics, not the network's readings, so
mixing a new prosody view with the network needs them again. For each leave-one-corpus-out run this retrains the
log-mel network exactly as the benchmark did (``VoiceTrainConfig()``, seed 0, the same split, caches and schedule)
but stops at the epoch the benchmark kept (``--best-epochs``; the one-cycle schedule is set by the full 30 epochs,
so the weights at that epoch are the benchmark's), and for RAVDESS actors 18-20 it reads the shipped checkpoint (the
benchmark's run of that split). It writes ``{cache}/egemaps_experiment/net-{run}.npz``: valence and arousal
probabilities of the test utterances (clean and degraded) and of the validation speakers, keyed by utterance, and
prints each run's network-alone valence UAR next to the benchmark's, as a check that the run was reproduced.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.readers import degraded_mels, loco_split, ravdess_actor_split  # noqa: E402
from crossemo_core.paths import REPO  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig  # noqa: E402
from crossemo_core.readers.reading import unweighted_average_recall  # noqa: E402
from crossemo_core.readers.voice import SINGLE_FRAME_FRONTEND, NetConfig, VoiceEmotionNet, VoiceReader  # noqa: E402
from crossemo_core.readers.voice_corpora import list_corpora  # noqa: E402
from crossemo_core.readers.voice_training import VoiceTrainConfig, spectrogram_cache, train_voice_reader  # noqa: E402
from crossemo_core.settings import cache_root  # noqa: E402

BENCHMARK_BEST_EPOCH = {"emodb": 20, "ravdess": 8, "tess": 25}
"""Epochs the readers benchmark kept (docs/readers_benchmark_single_frame_trim.json, seed 0)."""
BENCHMARK_NETWORK_UAR = {"emodb": 0.491, "ravdess": 0.515, "tess": 0.630, "ravdess18-20": 0.706}


class _Stop(Exception):
    pass


def _probs(reader: VoiceReader, mels: list[np.ndarray]) -> dict[str, np.ndarray]:
    p = reader.probabilities([m.astype(np.float32) for m in mels])
    return {"valence": p["valence"], "arousal": p["arousal"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--runs", nargs="+", default=["ravdess18-20", "ravdess", "emodb", "tess"])
    ap.add_argument("--out", type=Path, default=cache_root() / "egemaps_experiment")
    args = ap.parse_args()
    torch.set_num_threads(1)
    frontend = SINGLE_FRAME_FRONTEND
    utts = list_corpora(args.data)
    cache = spectrogram_cache(utts, frontend, AugmentConfig(), seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    for run in args.runs:
        file = args.out / f"net-{run}.npz"
        if file.is_file():
            print(f"{run}: cached", flush=True)
            continue
        if run == "ravdess18-20":
            split = ravdess_actor_split(utts)
            reader = VoiceReader.load(REPO / "checkpoints" / "voice_reader.pt")
        else:
            split = loco_split(utts, run)
            best = BENCHMARK_BEST_EPOCH[run]
            state = args.out / f"train-{run}.pt"

            def stop(row: dict[str, float], best: int = best) -> None:
                print(f"{run} epoch {row['epoch']}: valid valence UAR {row.get('valid_valence_uar', float('nan')):.3f}",
                      flush=True)
                if row["epoch"] >= best:
                    raise _Stop

            try:
                train_voice_reader(split.train, split.valid, cache, frontend, VoiceTrainConfig(), resume=state,
                                   on_epoch=stop)
            except _Stop:
                pass
            saved = torch.load(state, map_location="cpu", weights_only=True)
            if saved["epoch"] < best:
                raise SystemExit(f"{run}: training stopped at epoch {saved['epoch']} before {best}")
            net = VoiceEmotionNet(frontend.n_mels, NetConfig())
            net.load_state_dict(saved["net"])
            reader = VoiceReader(net.eval(), frontend, NetConfig())
        test, valid = split.test, split.valid
        clean = _probs(reader, [cache[u.key][0][1] for u in test])
        degraded = _probs(reader, degraded_mels(test, cache))
        val = _probs(reader, [cache[u.key][0][1] for u in valid])
        y = np.array([u.valence for u in test])
        uar = unweighted_average_recall(y, clean["valence"].argmax(1), 3)
        print(f"{run}: network valence UAR {uar:.3f} (benchmark {BENCHMARK_NETWORK_UAR[run]:.3f})", flush=True)
        np.savez(file, test_keys=np.array([u.key for u in test]), valid_keys=np.array([u.key for u in valid]),
                 **{f"test_clean_{k}": v for k, v in clean.items()},
                 **{f"test_degraded_{k}": v for k, v in degraded.items()},
                 **{f"valid_{k}": v for k, v in val.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
