"""The readers benchmark's four main voice runs again with another prosody feature set, without retraining networks.

    OMP_NUM_THREADS=1 python scripts/egemaps_network_probs.py --data ../shared/data   # the runs' networks, once
    OMP_NUM_THREADS=1 python scripts/rescore_readers_prosody.py --data ../shared/data --bench /tmp/vr/bench \\
        --features egemaps --out docs/readers_benchmark_single_frame_trim

``benchmark --suite readers`` trains each run's log-mel network and then fits the prosody view
(``crossemo_core.benchmark.readers.voice_run``). Only the view changes with ``--features``, so this takes each main
run's network as the benchmark trained it (leave-one-corpus-out: the states ``egemaps_network_probs.py`` rebuilt at
the benchmark's kept epoch, whose network-alone valence UAR equals the benchmark's; RAVDESS actors 18-20: the shipped
checkpoint, that run's network) and runs ``voice_run(..., trained=...)``: the same prosody fit, the same clean,
degraded and baseline measurements. The records go into the benchmark's run cache under the keys that
``benchmark --suite readers`` gives runs with that feature set (so the benchmark finds them), and ``OUT.md`` /
``OUT.json`` are written from them, with the ablation rows, face rows and latency of the previous ``OUT.json``
(the ablation keeps the prosody view it was measured with, as its rows say).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crossemo_core.benchmark.cache import RunCache, json_safe  # noqa: E402
from crossemo_core.benchmark.readers import (ABLATION_CONFIG, VoiceJob, is_voice_record, loco_split,  # noqa: E402
                                             ravdess_actor_split, readers_jobs, readers_markdown, voice_run)
from crossemo_core.paths import REPO, atomic_write  # noqa: E402
from crossemo_core.readers.augment import AugmentConfig  # noqa: E402
from crossemo_core.readers.prosody import PROSODY_FEATURES  # noqa: E402
from crossemo_core.readers.voice import SINGLE_FRAME_FRONTEND, NetConfig, VoiceEmotionNet, VoiceReader  # noqa: E402
from crossemo_core.readers.voice_corpora import list_corpora  # noqa: E402
from crossemo_core.readers.voice_training import (TrainRecord, VoiceTrainConfig, prosody_cache,  # noqa: E402
                                                  spectrogram_cache)
from crossemo_core.settings import cache_root  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--bench", type=Path, required=True, help="the readers benchmark's --out folder")
    ap.add_argument("--features", choices=PROSODY_FEATURES, required=True)
    ap.add_argument("--nets", type=Path, default=cache_root() / "egemaps_experiment")
    ap.add_argument("--out", type=Path, required=True,
                    help="OUT.md and OUT.json (the previous OUT.json gives the rows not rerun; no default, so a "
                         "committed table is rewritten only when named)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    frontend, config = SINGLE_FRAME_FRONTEND, VoiceTrainConfig()
    utts = list_corpora(args.data)
    cache = spectrogram_cache(utts, frontend, AugmentConfig(), seed=0)
    prosody = prosody_cache(utts, AugmentConfig(), seed=0, features=args.features)
    runs = RunCache(args.bench / "cache", valid=is_voice_record)
    records = []
    for job in readers_jobs((0,), False, config, ABLATION_CONFIG, args.features):
        old = runs.get(VoiceJob(job.kind, job.held_out, job.config).key(frontend))
        if old is None:
            raise SystemExit(f"{args.bench}/cache has no {job.kind} run for {job.held_out or 'RAVDESS 18-20'}")
        if job.held_out is None:
            split = ravdess_actor_split(utts)
            reader = VoiceReader.load(REPO / "checkpoints" / "voice_reader.pt")
            if reader.meta["training"]["best_epoch"] != old["best_epoch"]:
                raise SystemExit("the shipped checkpoint is not the benchmark's RAVDESS 18-20 run")
        else:
            split = loco_split(utts, job.held_out)
            state = torch.load(args.nets / f"train-{job.held_out}.pt", map_location="cpu", weights_only=True)
            if state["epoch"] != old["best_epoch"]:
                raise SystemExit(f"{job.held_out}: rebuilt network is at epoch {state['epoch']}, "
                                 f"the benchmark kept {old['best_epoch']}")
            net = VoiceEmotionNet(frontend.n_mels, NetConfig())
            net.load_state_dict(state["net"])
            reader = VoiceReader(net.eval(), frontend, NetConfig())
        record = TrainRecord(old["history"], old["best_epoch"], old["valid_valence_uar"], old["seconds"])
        new, _ = voice_run(split, cache, prosody, frontend, config, args.features, trained=(reader, record))
        new.update(kind=job.kind, history=old["history"], seconds=old["seconds"],
                   rescored_from=VoiceJob(job.kind, job.held_out, job.config).key(frontend))
        if abs(new["clean"]["valence_uar_network"] - old["clean"]["valence_uar_network"]) > 1e-9:
            raise SystemExit(f"{split.name}: the network reads differently from the benchmark's run")
        runs.put(job.key(frontend), new)
        records.append(new)
        print(f"{split.name}: valence UAR {old['clean']['valence_uar']:.3f} -> {new['clean']['valence_uar']:.3f} "
              f"(prosody alone {old['clean']['valence_uar_prosody']:.3f} -> {new['clean']['valence_uar_prosody']:.3f}; "
              f"degraded {old['degraded']['valence_uar']:.3f} -> {new['degraded']['valence_uar']:.3f})", flush=True)
    previous = json.loads(args.out.with_suffix(".json").read_text())
    result = {**previous, "voice": records + [r for r in previous["voice"] if r["kind"].startswith("ablation")],
              "command": previous["command"] + f" (main voice rows: prosody view '{args.features}', "
                                                  f"python scripts/rescore_readers_prosody.py --features {args.features})"}
    atomic_write(args.out.with_suffix(".json"), json.dumps(json_safe(result), indent=1).encode())
    atomic_write(args.out.with_suffix(".md"), readers_markdown(result).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
