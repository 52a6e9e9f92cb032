"""``benchmark --suite readers``: how well each reader holds on speakers, faces and corpora it never saw.

Voice (3-class valence UAR, 7-emotion UAR, arousal UAR; chance 0.33 / 0.14 / 0.50):

- **leave one corpus out**: train on two of RAVDESS / TESS / EmoDB, test on every utterance of the third;
  validation speakers (for the epoch kept) come from the training corpora only;
- **RAVDESS unseen actors**: train on TESS + EmoDB + RAVDESS actors 1-14 (15-17 validation), test on actors 18-20
  (the shipped reader's own protocol, so these actors stay unseen for the clip evaluation too);
- **augmentation ablation**: each leave-one-corpus-out run again with one augmentation switched off, and with none;
- every test is on the clean recordings and on degraded copies (random chains of 2-4 augmentations).

Face rows (FER2013 PublicTest, CK+48 as an unseen dataset, FER-framed crops of video) come from
:func:`crossemo_core.readers.face_eval.face_rows` when the face reader is installed. Latency: reading one second of
audio and one video frame with one thread.

Every run is cached (one JSON file per run under ``OUT/cache``), so an interrupted benchmark resumes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from crossemo_core.benchmark.cache import RunCache, is_number, json_safe
from crossemo_core.clip.decode import ClipLimits
from crossemo_core.paths import atomic_write
from crossemo_core.readers.augment import AUGMENTATIONS, AugmentConfig
from crossemo_core.readers.voice import FrontendConfig, VoiceReader
from crossemo_core.readers.voice_corpora import CORPORA, Utterance, list_corpora, ravdess_actor
from crossemo_core.readers.prosody import PROSODY_DEFAULT
from crossemo_core.readers.voice_training import (TrainRecord, Versions, VoiceTrainConfig, evaluate_mels,
                                                  fit_prosody_view, prosody_cache, speaker_baselines,
                                                  spectrogram_cache, train_voice_reader)

VALID_SPEAKERS = {"ravdess": {"ravdess:15", "ravdess:16", "ravdess:17"}, "emodb": {"emodb:15", "emodb:16"}}
"""Validation speakers taken out of a training corpus (TESS, with 2 speakers, gives none)."""
RAVDESS_TEST_ACTORS = (18, 19, 20)
BASELINE_CLIPS = 2
"""Neutral recordings per test speaker that make the per-person baseline (left out of the baseline comparison)."""


@dataclass(frozen=True)
class VoiceSplit:
    """Which utterances train, validate and test one voice run."""

    name: str
    train: list[Utterance]
    valid: list[Utterance]
    test: list[Utterance]


def loco_split(utts: list[Utterance], held_out: str) -> VoiceSplit:
    rest = [u for u in utts if u.corpus != held_out]
    valid = [u for u in rest if u.speaker in VALID_SPEAKERS.get(u.corpus, set())]
    train = [u for u in rest if u not in set(valid)]
    return VoiceSplit(f"leave {held_out} out", train, valid, [u for u in utts if u.corpus == held_out])


def ravdess_actor_split(utts: list[Utterance], test_actors: tuple[int, ...] = RAVDESS_TEST_ACTORS) -> VoiceSplit:
    """TESS + EmoDB (EmoDB speakers 15, 16 validate) + RAVDESS actors below the test actors (15-17 validate)."""
    test = [u for u in utts if u.corpus == "ravdess" and ravdess_actor(u) in test_actors]
    rest = [u for u in utts if u not in set(test)]
    valid = [u for u in rest if u.speaker in VALID_SPEAKERS.get(u.corpus, set())]
    train = [u for u in rest if u not in set(valid) and u not in set(test)]
    return VoiceSplit(f"RAVDESS actors {test_actors[0]}-{test_actors[-1]}", train, valid, test)


def degraded_mels(test: list[Utterance], cache: dict[str, Versions]) -> list[np.ndarray]:
    """The first random-chain copy of every test utterance (a version with two or more augmentations)."""
    return [next(m for names, m in cache[u.key] if len(names) >= 2) for u in test]


def _first_neutral(utts: list[Utterance]) -> set[str]:
    """Keys of the first :data:`BASELINE_CLIPS` neutral recordings of each speaker (the baseline clips)."""
    taken: dict[str, int] = {}
    keys = set()
    for u in utts:
        if u.is_neutral and taken.get(u.speaker, 0) < BASELINE_CLIPS:
            taken[u.speaker] = taken.get(u.speaker, 0) + 1
            keys.add(u.key)
    return keys


def voice_run(split: VoiceSplit, cache: dict[str, Versions], prosody: dict[str, np.ndarray],
              frontend: FrontendConfig, config: VoiceTrainConfig, prosody_features: str = PROSODY_DEFAULT,
              trained: tuple[VoiceReader, TrainRecord] | None = None) -> tuple[dict[str, Any], VoiceReader]:
    """Train on ``split`` (network, then the prosody view of ``prosody_features``, whose rows ``prosody`` holds)
    and measure it on the test utterances: clean, degraded, and with each test speaker's baseline. ``trained``: a
    network already trained on ``split`` with ``config`` (and its record), to refit and measure the prosody view
    only."""
    t0 = time.perf_counter()
    reader, record = trained or train_voice_reader(split.train, split.valid, cache, frontend, config)
    weights = fit_prosody_view(reader, split.train, split.valid, cache, prosody, features=prosody_features,
                               speaker_balance=config.speaker_balance)
    test = split.test
    clean = evaluate_mels(reader, [cache[u.key][0][1] for u in test], test,
                          prosody_rows=np.stack([prosody[u.key][0] for u in test]))
    degraded = evaluate_mels(reader, degraded_mels(test, cache), test,
                             prosody_rows=np.stack([prosody[u.key][1] for u in test]))
    baselines = speaker_baselines(test, cache, frontend, prosody, per_speaker=BASELINE_CLIPS)
    used = _first_neutral(test)
    rest = [u for u in test if u.key not in used]
    rest_mels, rest_rows = [cache[u.key][0][1] for u in rest], np.stack([prosody[u.key][0] for u in rest])
    return {"split": split.name, "n_train": len(split.train), "n_valid": len(split.valid), "n_test": len(test),
            "augmentations": list(config.augmentations), "seed": config.seed, "clean": clean, "degraded": degraded,
            "without_baseline": evaluate_mels(reader, rest_mels, rest, prosody_rows=rest_rows),
            "with_baseline": evaluate_mels(reader, rest_mels, rest, baselines, prosody_rows=rest_rows),
            "prosody_weight": reader.prosody_weight, "prosody_weight_valid_uar": weights,
            "prosody_features": prosody_features,
            "best_epoch": record.best_epoch, "valid_valence_uar": record.best_valid_uar,
            **{k: v for k, v in reader.meta.get("training", {}).items() if k.startswith("averaged_")},
            "history": record.history, "seconds": time.perf_counter() - t0}, reader


def read_latency(seconds: float = 10.0, repeats: int = 5) -> dict[str, float]:
    """Warm seconds (median of ``repeats``) for ``read`` of a ``seconds``-long demo clip (decode, face tracker and
    face reader at 5 frames/s, voice reader) with 2 torch threads, and the same per second of audio and per video
    frame with 1 thread (voice reader alone; face tracker + face reader alone)."""
    from crossemo_core.clip.decode import NamedBytes, decode_media
    from crossemo_core.clip.face import FaceTrack
    from crossemo_core.benchmark.speed import median_seconds
    from crossemo_core.clip.synth import demo_clip
    from crossemo_core.readers.cli import FACE_FPS, Readers

    data = NamedBytes("demo.mp4", demo_clip(seconds))
    readers = Readers()

    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    clip_s = median_seconds(lambda: readers.read_file(data), repeats)
    torch.set_num_threads(1)
    frames: list[np.ndarray] = []
    media = decode_media(data, limits=ClipLimits(fps=FACE_FPS), on_frame=lambda t, rgb: frames.append(rgb))
    voice_s = median_seconds(lambda: readers.voice.read_recording(media.audio), repeats) / seconds
    tracker = readers.face.tracker

    def faces() -> None:
        tracker.reset()
        track = FaceTrack([tracker.analyse(i / FACE_FPS, f) for i, f in enumerate(frames)])
        readers.face.read_crops(track.crops(), use_blendshapes=False, scales=track.scales())

    frame_s = median_seconds(faces, repeats) / len(frames)
    readers.close()
    torch.set_num_threads(previous)
    return {f"read a {seconds:g} s clip, warm, 2 threads (s)": clip_s, "voice reader per second of audio, 1 thread (s)":
            voice_s, "face tracker + face reader per video frame, 1 thread (s)": frame_s}


@dataclass(frozen=True)
class VoiceJob:
    """One voice run of the suite: which split (``kind`` and, for leave-one-corpus-out, the held-out corpus), which
    augmentations, which training settings."""

    kind: str
    held_out: str | None
    config: VoiceTrainConfig
    prosody_features: str = PROSODY_DEFAULT

    def key(self, frontend: FrontendConfig) -> str:
        parts: list[Any] = [self.config.identity(), dataclasses.asdict(frontend)]
        if self.prosody_features != "statistics":  # runs made before the choice existed keep their keys
            parts.append(self.prosody_features)
        settings = json.dumps(parts, sort_keys=True)
        digest = hashlib.sha256(settings.encode()).hexdigest()[:10]
        return f"voice-{self.kind}-{self.held_out or 'ravdess18-20'}-s{self.config.seed}-{digest}".replace(" ", "_")


_WORKER: dict[str, Any] = {}


def _load_worker(data_root: str, frontend: FrontendConfig, threads: int, prosody_features: str) -> None:
    """Each worker process reads the corpora and both caches once (from disk: they were built before)."""
    torch.set_num_threads(threads)
    utts = list_corpora(data_root)
    _WORKER.update(utts=utts, frontend=frontend, cache=spectrogram_cache(utts, frontend, AugmentConfig(), seed=0),
                   prosody=prosody_cache(utts, AugmentConfig(), seed=0, features=prosody_features))


def _run_job(job: VoiceJob) -> dict[str, Any]:
    utts = _WORKER["utts"]
    split = ravdess_actor_split(utts) if job.held_out is None else loco_split(utts, job.held_out)
    record, _ = voice_run(split, _WORKER["cache"], _WORKER["prosody"], _WORKER["frontend"], job.config,
                          job.prosody_features)
    return {**record, "kind": job.kind}


VOICE_RUNS = ("loco", "ravdess-actors")
"""The suite's main voice runs: leave-one-corpus-out (three runs) and RAVDESS unseen actors (one run)."""


def readers_jobs(seeds: tuple[int, ...], ablation: bool, config: VoiceTrainConfig,
                 ablation_config: VoiceTrainConfig, prosody_features: str = PROSODY_DEFAULT,
                 voice_runs: tuple[str, ...] = VOICE_RUNS) -> list[VoiceJob]:
    """The suite's voice runs: those of ``voice_runs`` (see ``VOICE_RUNS``) per seed, then (seed 0) the
    augmentation ablation, which uses its own, shorter settings and has its own all-augmentations reference."""
    if isinstance(voice_runs, str) or not voice_runs or set(voice_runs) - set(VOICE_RUNS):
        raise ValueError(f"voice_runs must be a non-empty tuple of {list(VOICE_RUNS)}, got {voice_runs!r}")
    jobs = []
    for seed in seeds:
        cfg = dataclasses.replace(config, seed=seed)
        if "loco" in voice_runs:
            jobs += [VoiceJob("loco", corpus, cfg, prosody_features) for corpus in CORPORA]
        if "ravdess-actors" in voice_runs:
            jobs.append(VoiceJob("ravdess-actors", None, cfg, prosody_features))
    if ablation:
        for off in ("none",) + AUGMENTATIONS + ("all",):
            kept = AUGMENTATIONS if off == "none" else () if off == "all" else tuple(a for a in AUGMENTATIONS
                                                                                     if a != off)
            jobs += [VoiceJob(f"ablation: without {off}", corpus, dataclasses.replace(ablation_config,
                                                                                      augmentations=kept),
                              prosody_features) for corpus in CORPORA]
    return jobs


ABLATION_CONFIG = VoiceTrainConfig(epochs=8, patience=3, views=1)
"""Shorter training for the 27 ablation runs (one copy of each utterance per epoch, 8 epochs): each row of that
table, its all-augmentations reference included, uses it, so the rows compare with each other, not with the main
table."""


def run_voice_jobs(planned: list[VoiceJob], runs: RunCache, data_root: str | Path, frontend: FrontendConfig, *,
                   jobs: int = 1, threads: int = 1, say: Callable[[str], None] = lambda _msg: None) -> None:
    """Compute every job of ``planned`` not yet in ``runs`` in ``jobs`` processes and put its record there (the
    spectrogram and prosody caches must exist: each worker reads them from disk). The jobs share one prosody feature
    set."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pending = [j for j in planned if runs.get(j.key(frontend)) is None]
    say(f"{len(planned) - len(pending)} voice run(s) cached, {len(pending)} to compute")
    if not pending:
        return
    features = {j.prosody_features for j in pending}
    if len(features) > 1:
        raise ValueError(f"voice jobs with different prosody features in one pool: {sorted(features)}")
    with ProcessPoolExecutor(max_workers=max(1, jobs), initializer=_load_worker,
                             initargs=(str(data_root), frontend, threads, features.pop())) as pool:
        futures = {pool.submit(_run_job, j): j for j in pending}
        for future in as_completed(futures):
            job = futures[future]
            record = future.result()
            runs.put(job.key(frontend), record)
            say(f"done: {job.kind}, {job.held_out or 'RAVDESS 18-20'}, seed {job.config.seed}: valence UAR "
                f"{record['clean']['valence_uar']:.3f} ({_epochs_kept(record)})")


VOICE_PARTS = ("clean", "degraded", "without_baseline", "with_baseline")
"""The test sets of a voice run record (:func:`voice_run`), each a dict of metrics."""


def is_voice_record(record: dict[str, Any]) -> bool:
    """Whether ``record`` has what :func:`readers_markdown` reads of a voice run (a damaged cache file may hold any
    JSON; such a run is computed again)."""
    def whole(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool)

    metrics = ("valence_uar", "valence_uar_network", "valence_uar_prosody", "emotion_uar", "arousal_uar")
    return (isinstance(record.get("kind"), str) and isinstance(record.get("split"), str)
            and whole(record.get("n_test")) and whole(record.get("best_epoch"))
            and all(isinstance(record.get(p), dict) and all(is_number(record[p].get(m)) for m in metrics)
                    for p in VOICE_PARTS)
            and all(is_number(record[p]["valence_uar"], False) for p in ("clean", "degraded"))
            and is_number(record.get("prosody_weight"), False) and is_number(record.get("valid_valence_uar"))
            and isinstance(record.get("averaged_epochs") or [], list)
            and all(whole(e) for e in record.get("averaged_epochs") or [])
            and is_number(record.get("averaged_valid_valence_uar")))


def _epochs_kept(record: dict[str, Any], validation: bool = True) -> str:
    """The epoch a voice run kept (``best epoch 9``; ``9`` without ``validation``) or the epochs its reader averages
    (``mean of epochs 7, 8, 9``), and the validation valence UAR of the reader kept when ``validation``."""
    if record.get("averaged_epochs"):
        kept = f"mean of epochs {', '.join(str(e) for e in record['averaged_epochs'])}"
        score = record.get("averaged_valid_valence_uar")
    else:
        kept = f"best epoch {record['best_epoch']}" if validation else str(record["best_epoch"])
        score = record["valid_valence_uar"]
    return f"{kept}, validation {score:.3f}" if validation and score is not None else kept


def run_readers(data_root: str | Path, out: str | Path, *, seeds: tuple[int, ...] = (0,), ablation: bool = True,
                config: VoiceTrainConfig = VoiceTrainConfig(), frontend: FrontendConfig = FrontendConfig(),
                jobs: int = 1, threads: int = 1, progress: Callable[[str], None] | None = None,
                command: str = "", prosody_features: str = PROSODY_DEFAULT,
                voice_runs: tuple[str, ...] = VOICE_RUNS) -> dict[str, Any]:
    """Run (or read from the cache) the voice runs of ``voice_runs`` in ``jobs`` processes, add the face rows and
    latency, write ``readers.md`` and ``readers.json`` under ``out``."""
    out = Path(out)
    runs = RunCache(out / "cache", valid=is_voice_record)
    say = progress or (lambda _msg: None)
    utts = list_corpora(data_root)
    say("spectrogram and prosody caches (computed once, then read)")
    spectrogram_cache(utts, frontend, AugmentConfig(), seed=0)
    prosody_cache(utts, AugmentConfig(), seed=0, features=prosody_features)
    planned = readers_jobs(seeds, ablation, config, ABLATION_CONFIG, prosody_features, voice_runs)
    run_voice_jobs(planned, runs, data_root, frontend, jobs=jobs, threads=threads, say=say)
    result: dict[str, Any] = {"command": command, "voice": [runs.get(j.key(frontend)) for j in planned]}
    try:
        from crossemo_core.readers.face_eval import face_rows
    except ImportError:
        result["face"] = None
    else:
        say("face reader")
        result["face"] = face_rows(data_root)
    say("latency")
    result["latency"] = read_latency()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "readers.json", json.dumps(json_safe(result), indent=1).encode())
    atomic_write(out / "readers.md", readers_markdown(result).encode())
    return result


def _mean_sd(values: list[float]) -> str:
    v = np.array([x for x in values if x is not None], float)
    if v.size == 0:
        return "-"
    return f"{v.mean():.3f}" if v.size == 1 else f"{v.mean():.3f} ± {v.std(ddof=1):.3f}"


def readers_markdown(result: dict[str, Any]) -> str:
    voice = [r for r in result["voice"] if r]
    lines = ["# Readers benchmark", "", f"Command: `{result.get('command', '')}`", "",
             "## Voice reader", "",
             "3-class valence UAR (chance 0.33), 7-emotion UAR (chance 0.14), arousal UAR (chance 0.50). "
             "'network' and 'prosody' are each view alone; the reader mixes them 50/50. 'with baseline': each test "
             "speaker normalised by 2 of their neutral recordings (those 2 left out of both baseline columns).", "",
             "| protocol | test | n | valence UAR | network | prosody | emotion UAR | arousal UAR | degraded | "
             "without / with baseline | prosody weight | epoch kept |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    main = [r for r in voice if not r["kind"].startswith("ablation")]
    for split in dict.fromkeys(r["split"] for r in main):
        rs = [r for r in main if r["split"] == split]

        def col(part: str, key: str) -> str:
            return _mean_sd([r[part].get(key) for r in rs])

        lines.append(f"| {rs[0]['kind']} | {split} | {rs[0]['n_test']} | {col('clean', 'valence_uar')} | "
                     f"{col('clean', 'valence_uar_network')} | {col('clean', 'valence_uar_prosody')} | "
                     f"{col('clean', 'emotion_uar')} | {col('clean', 'arousal_uar')} | "
                     f"{col('degraded', 'valence_uar')} | {col('without_baseline', 'valence_uar')} / "
                     f"{col('with_baseline', 'valence_uar')} | {', '.join(str(r['prosody_weight']) for r in rs)} | "
                     f"{'; '.join(_epochs_kept(r, validation=False) for r in rs)} |")
    ablation = [r for r in voice if r["kind"].startswith("ablation")]
    if ablation:
        splits = list(dict.fromkeys(r["split"] for r in ablation))
        lines += ["", "### What each augmentation buys", "",
                  "Leave-one-corpus-out valence UAR, clean / degraded test, with the ablation's shorter training "
                  f"({ABLATION_CONFIG.epochs} epochs, patience {ABLATION_CONFIG.patience}, {ABLATION_CONFIG.views} copy of each "
                  "utterance per epoch).", "",
                  "| training augmentations | " + " | ".join(splits) + " | mean |", "|---" * (len(splits) + 2) + "|"]
        for kind in dict.fromkeys(r["kind"] for r in ablation):
            rs = {r["split"]: r for r in ablation if r["kind"] == kind}
            label = {"ablation: without none": "all (reference)", "ablation: without all": "none"}.get(
                kind, kind.replace("ablation: ", ""))
            cells = [f"{rs[s]['clean']['valence_uar']:.3f} / {rs[s]['degraded']['valence_uar']:.3f}"
                     if s in rs else "-" for s in splits]
            mean = (f"{np.mean([r['clean']['valence_uar'] for r in rs.values()]):.3f} / "
                    f"{np.mean([r['degraded']['valence_uar'] for r in rs.values()]):.3f}")
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {mean} |")
    if result.get("face"):
        lines += ["", "## Face reader", "", "| test | n | 7-class accuracy | emotion UAR | valence UAR |",
                  "|---|---|---|---|---|"]
        for row in result["face"]:
            acc = row.get("accuracy")
            lines.append(f"| {row['test']} | {row['n']} | {'-' if acc is None else f'{acc:.3f}'} | "
                         f"{row['emotion_uar']:.3f} | {row['valence_uar']:.3f} |")
    lines += ["", "## Latency", ""]
    for k, v in result.get("latency", {}).items():
        lines.append(f"- {k}: {v:.4f}")
    return "\n".join(lines) + "\n"
