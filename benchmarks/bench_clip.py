"""Clip verdict latency and memory: a 10 s, 25 fps, 640x360 clip (H.264 + AAC) built from the demo assets.

    python benchmarks/bench_clip.py [--seconds 10] [--repeats 5] [--verdicts 100]

- cold: a fresh process imports crossemo, loads the clip model and mediapipe and judges the clip once
  (what ``python -m crossemo_core score FILE`` costs, minus printing);
- warm: further verdicts on the same clip in this process, with the stages timed (decode + face mesh, expression
  network, voice features, model);
- faceless: warm verdicts of a ``--faceless`` s clip whose video has no face, where the face tracker searches the
  frame's tiles as well (``FaceAnalyzer.TILE_MAX_GAP``); and of a clip as long with a face ~28 px wide on 640x480
  frames (the bundled photo drawn 120 px wide), which the detectors find in 1 of 15 whole frames (a face across a
  room: found in the tiles, then near where it was, ``FaceAnalyzer.NEAR_SCALE``);
- memory: resident set size (RSS) before and after ``--verdicts`` verdicts in a row in one process.
Targets (issue 4): warm <= 1 s, cold <= 10 s, memory growth over 100 verdicts < 50 MB, on 2 CPU cores.
The clip is written to a temporary folder that is removed afterwards.
"""
from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ASSETS = ROOT / "assets" / "clips"


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_clip(seconds: float) -> bytes:
    from crossemo_core.clip.synth import demo_clip

    return demo_clip(seconds)


COLD = """
import sys, time
t0 = time.perf_counter()
c0 = time.process_time()
sys.path.insert(0, {root!r})
from crossemo_core.clip.verdict import ClipScorer
s = ClipScorer()
t1 = time.perf_counter()
v = s.score({path!r})
t2 = time.perf_counter()
print(f"{{t1 - t0:.3f}} {{t2 - t1:.3f}} {{v.verdict}} {{time.process_time() - c0:.3f}}")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=5, help="warm verdicts timed")
    ap.add_argument("--cold", type=int, default=2, help="cold runs (fresh processes)")
    ap.add_argument("--verdicts", type=int, default=100, help="verdicts in a row for the memory check (0: skip)")
    ap.add_argument("--faceless", type=float, default=30.0,
                    help="also time a clip this long whose video has no face (the face search's cost; 0: skip)")
    args = ap.parse_args()

    from crossemo_core.clip import verdict as vmod
    from crossemo_core.clip.decode import NamedBytes

    with tempfile.TemporaryDirectory(prefix="crossemo-bench-") as tmp:
        clip = Path(tmp) / "bench.mp4"
        clip.write_bytes(make_clip(args.seconds))
        print(f"clip: {args.seconds:.0f} s, 25 fps, 640x360, {clip.stat().st_size / 1e3:.0f} kB; "
              f"CPU cores visible: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")

        colds = []
        for _ in range(args.cold):
            out = subprocess.run([sys.executable, "-c", COLD.format(root=str(ROOT), path=str(clip))],
                                 capture_output=True, text=True, check=True).stdout.split()
            colds.append((float(out[0]), float(out[1])))
            print(f"cold: imports + model load {colds[-1][0]:.2f} s, first verdict {colds[-1][1]:.2f} s, "
                  f"total {sum(colds[-1]):.2f} s ({out[2]}; CPU time {float(out[3]):.2f} s)")

        scorer = vmod.ClipScorer()
        data = NamedBytes(clip.name, clip.read_bytes())
        scorer.score(data)  # warm-up
        stages = {"decode+face mesh": [], "expression nets": [], "voice features": [],
                  "voice reader+model+verdict": []}
        totals, cpu = [], []
        for _ in range(args.repeats):
            c0 = time.process_time()
            t0 = time.perf_counter()
            a = _timed_analyse(scorer, data, stages)
            t1 = time.perf_counter()
            scorer.judge(a)
            t2 = time.perf_counter()
            stages["voice reader+model+verdict"].append(t2 - t1)
            totals.append(t2 - t0)
            cpu.append(time.process_time() - c0)
        print(f"warm verdict: median {np.median(totals):.3f} s, min {min(totals):.3f} s over {args.repeats} "
              f"(CPU time of this process, all threads: median {np.median(cpu):.3f} s; on a shared machine wall "
              f"time includes waiting for other jobs, load average now {os.getloadavg()[0]:.1f})")
        for k, v in stages.items():
            print(f"  {k:>17}: median {np.median(v):.3f} s")

        if args.faceless:
            from crossemo_core.benchmark.speed import median_seconds

            empty = NamedBytes("faceless.mp4", voice_clip(args.faceless, lambda i: np.full((360, 640, 3), 110 + i % 7,
                                                                                          np.uint8)))
            print(f"faceless: a {args.faceless:.0f} s clip of grey frames (640x360) with the demo voice: median "
                  f"{median_seconds(lambda: scorer.score(empty), repeats=3):.2f} s of 3 verdicts")
            far = NamedBytes("far_face.mp4", voice_clip(args.faceless, far_face_frames()))
            v = scorer.score(far)  # also the warm-up
            print(f"far face: a {args.faceless:.0f} s clip with a face ~28 px wide on 640x480 frames: median "
                  f"{median_seconds(lambda: scorer.score(far), repeats=3, warmups=0):.2f} s of 3 verdicts (face "
                  f"read in {100 * v.face_fraction:.0f} % of the time)")

        if args.verdicts:
            gc.collect()
            before = rss_mb()
            marks = []
            for i in range(args.verdicts):
                scorer.score(data)
                if (i + 1) % max(1, args.verdicts // 5) == 0:
                    gc.collect()
                    marks.append(f"{i + 1}: {rss_mb():.0f} MB")
            gc.collect()
            after = rss_mb()
            print(f"memory: RSS {before:.0f} MB before, {after:.0f} MB after {args.verdicts} verdicts "
                  f"(growth {after - before:+.1f} MB; target < 50 MB); " + ", ".join(marks))
        scorer.close()
    return 0


def voice_clip(seconds: float, frame_at) -> bytes:  # noqa: ANN001
    """MP4 bytes: ``seconds`` of 25 fps frames ``frame_at(i)`` with the demo voice looped."""
    import soundfile as sf

    from crossemo_core.clip import synth

    voice, _ = sf.read(ASSETS / "voice_upbeat.wav", dtype="float32")
    n = int(seconds * synth.AUDIO_RATE)
    audio = np.tile(voice, int(np.ceil(n / len(voice))))[:n]
    return synth.encode_video(frame_at, int(seconds * 25), 25, audio, container="mp4")


def far_face_frames():  # noqa: ANN201
    """``frame_at(i)``: the bundled face photo drawn 120 px wide (its face ~28 px), drifting slowly on a grey 640x480
    frame."""
    import cv2

    from crossemo_core.clip import synth

    photo = cv2.cvtColor(cv2.imread(str(ASSETS / "face_photo.jpg")), cv2.COLOR_BGR2RGB)
    return lambda i: synth.place((480, 640), photo, 120, 320 + 40 * np.sin(i / 50), 240 + 20 * np.cos(i / 70),
                                 background=110)


def _timed_analyse(scorer, data, stages):  # noqa: ANN001, ANN202
    """ClipScorer.analyse with its stages timed (same calls, split apart)."""
    import crossemo_core.clip.sequences as seq
    from crossemo_core.clip.decode import decode_media
    from crossemo_core.clip.face import FaceTrack
    from crossemo_core.clip.verdict import ClipAnalysis

    t0 = time.perf_counter()
    faces = scorer.faces
    faces.reset()
    track = FaceTrack()
    media = decode_media(data, limits=scorer.limits, on_frame=lambda t, rgb: track.frames.append(faces.analyse(t, rgb)),
                         need_video=True, need_audio=True)
    t1 = time.perf_counter()
    crops = track.crops()
    logits = scorer.model.expression.logits(crops)
    emotions = scorer.face_reader.read_crops(crops, use_blendshapes=False, scales=track.scales()).emotions
    t2 = time.perf_counter()
    voice = seq.voice_track(media.audio, 16000, scorer.extractor)
    t3 = time.perf_counter()
    stages["decode+face mesh"].append(t1 - t0)
    stages["expression nets"].append(t2 - t1)
    stages["voice features"].append(t3 - t2)
    return ClipAnalysis(name=media.name, voice_name=None, duration_s=len(media.audio) / 16000, track=track,
                        face_logits=logits, voice=voice, envelope=np.zeros(0), still=False, face_emotions=emotions,
                        audio=media.audio, fps=scorer.limits.fps)


if __name__ == "__main__":
    raise SystemExit(main())
