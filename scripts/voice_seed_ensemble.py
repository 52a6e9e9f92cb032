"""How much do the voice reader's numbers move from seed to seed, and does averaging seeds help on unseen corpora?

    OMP_NUM_THREADS=1 python scripts/egemaps_network_probs.py --data ../shared/data     # seed 0's readings
    OMP_NUM_THREADS=1 python scripts/voice_seed_ensemble.py --data ../shared/data --seeds 1 2 --jobs 2

For each of the readers benchmark's four main runs (leave RAVDESS / TESS / EmoDB out; RAVDESS actors 18-20) this
trains the log-mel network of the shipped recipe (``VoiceTrainConfig()``) with each of ``--seeds`` (state saved
every epoch under ``--work``, so an interrupted run resumes) and keeps its valence probabilities on the test
utterances (clean and the degraded copy) and on the validation speakers. Seed 0's come from
``scripts/egemaps_network_probs.py`` (the benchmark's own seed-0 networks, rebuilt; RAVDESS 18-20: the shipped
checkpoint). The prosody view does not depend on the seed (its logistic regressions are fitted on the training
utterances' statistics), so it is fitted once per run and mixed 50/50 as the shipped reader mixes it.

Reported per run: each seed's mix valence UAR (mean and sample sd over seeds: the run-to-run spread every reader
decision has been read against), and the mix with the networks' probabilities averaged over the seeds (seed 0 and
1; all seeds). Writes ``docs/readers_seeds.json`` (aggregates only). The 18-20 readers are also saved under
``--work`` as ``reader-ravdess18-20-s{seed}.pt``.
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from crossemo_core.benchmark.cache import json_safe  # noqa: E402
from crossemo_core.benchmark.readers import degraded_mels  # noqa: E402
from crossemo_core.paths import REPO, atomic_write  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig  # noqa: E402
from crossemo_core.readers.reading import unweighted_average_recall  # noqa: E402
from crossemo_core.readers.voice import SINGLE_FRAME_FRONTEND, VoiceReader  # noqa: E402
from crossemo_core.readers.voice_corpora import list_corpora  # noqa: E402
from crossemo_core.readers.voice_training import (VoiceTrainConfig, fit_prosody_view, prosody_cache,  # noqa: E402
                                                  spectrogram_cache, train_voice_reader)
from crossemo_core.settings import cache_root  # noqa: E402
from egemaps_prosody_experiment import RUNS, run_split  # noqa: E402


def _train(data: str, run: str, seed: int, work: str) -> str:
    torch.set_num_threads(1)
    work_dir = Path(work)
    file = work_dir / f"net-{run}-s{seed}.npz"
    if file.is_file():
        return str(file)
    frontend = SINGLE_FRAME_FRONTEND
    utts = list_corpora(data)
    cache = spectrogram_cache(utts, frontend, AugmentConfig(), seed=0)
    split = run_split(utts, run)
    reader, record = train_voice_reader(split.train, split.valid, cache, frontend, VoiceTrainConfig(seed=seed),
                                        resume=work_dir / f"state-{run}-s{seed}.pt")
    if run == "ravdess18-20":
        reader.save(work_dir / f"reader-{run}-s{seed}.pt")

    def probs(mels: list[np.ndarray]) -> np.ndarray:
        return reader.probabilities([m.astype(np.float32) for m in mels])["valence"]

    np.savez(file, test_keys=np.array([u.key for u in split.test]), valid_keys=np.array([u.key for u in split.valid]),
             test_clean_valence=probs([cache[u.key][0][1] for u in split.test]),
             test_degraded_valence=probs(degraded_mels(split.test, cache)),
             valid_valence=probs([cache[u.key][0][1] for u in split.valid]),
             best_epoch=record.best_epoch, best_valid=record.best_valid_uar)
    return str(file)


def _aligned(file: Path, keys: list[str], part: str) -> np.ndarray:
    with np.load(file) as z:
        where = {k: i for i, k in enumerate(z[f"{part.split('_')[0]}_keys"])}
        return z[f"{part}_valence"][[where[k] for k in keys]]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--work", type=Path, default=cache_root() / "voice_seeds")
    p.add_argument("--seed0", type=Path, default=cache_root() / "egemaps_experiment",
                   help="folder of scripts/egemaps_network_probs.py's net-{run}.npz (seed 0)")
    p.add_argument("--json", type=Path, default=REPO / "docs" / "readers_seeds.json")
    args = p.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    frontend = SINGLE_FRAME_FRONTEND
    utts = list_corpora(args.data)
    cache = spectrogram_cache(utts, frontend, AugmentConfig(), seed=0)
    prosody = prosody_cache(utts, AugmentConfig(), seed=0)
    files = {(run, 0): args.seed0 / f"net-{run}.npz" for run in RUNS}
    missing = [f for f in files.values() if not f.is_file()]
    if missing:
        raise SystemExit(f"seed 0's readings are missing ({missing[0]}): run scripts/egemaps_network_probs.py first")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(_train, str(args.data), run, seed, str(args.work)): (run, seed)
                   for seed in args.seeds for run in RUNS}
        for future in as_completed(futures):
            files[futures[future]] = Path(future.result())
            print(f"done: {futures[future]}", flush=True)
    seeds = [0, *args.seeds]
    out: dict = {"command": "python " + " ".join(sys.argv), "seeds": seeds, "runs": {}}
    template = VoiceReader.load(REPO / "checkpoints" / "voice_reader.pt")
    for run in RUNS:
        split = run_split(utts, run)
        fit_prosody_view(template, split.train, [], cache, prosody)
        y = np.array([u.valence for u in split.test])
        keys = [u.key for u in split.test]
        row: dict = {"n_test": len(keys)}
        for part, index in (("clean", 0), ("degraded", 1)):
            pros = template.prosody.proba(np.stack([prosody[k][index] for k in keys]))["valence"]
            nets = [_aligned(files[(run, s)], keys, f"test_{part}") for s in seeds]

            def uar(net: np.ndarray, pros: np.ndarray = pros) -> float:
                return unweighted_average_recall(y, (0.5 * net + 0.5 * pros).argmax(1), 3)

            single = [uar(n) for n in nets]
            row[part] = {"per_seed": single, "mean": float(np.mean(single)), "sd": float(np.std(single, ddof=1)),
                         "network_per_seed": [unweighted_average_recall(y, n.argmax(1), 3) for n in nets],
                         "seeds_0_1": uar(np.mean(nets[:2], axis=0)), "all_seeds": uar(np.mean(nets, axis=0)),
                         "network_all_seeds": unweighted_average_recall(y, np.mean(nets, axis=0).argmax(1), 3)}
        out["runs"][run] = row
        c = row["clean"]
        print(f"{run:>13}: per seed {', '.join(f'{v:.3f}' for v in c['per_seed'])} (mean {c['mean']:.3f} "
              f"sd {c['sd']:.3f}); seeds 0+1 {c['seeds_0_1']:.3f}; all {c['all_seeds']:.3f}; degraded mean "
              f"{row['degraded']['mean']:.3f}, all {row['degraded']['all_seeds']:.3f}", flush=True)
    atomic_write(args.json, json.dumps(json_safe(out), indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
