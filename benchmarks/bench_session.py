"""Whole sessions (issue 17): time and peak memory of the streaming analysis on 30 s, 10 min and 60 min recordings,
the app's timeline on the hour, and segment-boundary accuracy on sessions stitched from held-apart material.

    python benchmarks/bench_session.py                      # everything; writes docs/session_benchmark.{md,json}
    python benchmarks/bench_session.py --lengths 30 600 --sessions 4 --out /tmp/bench   # smaller
    python benchmarks/bench_session.py --part valid --seed 1 --sessions 21 --lengths --no-half-rate --sweep \
        --out docs/session_rule_valid    # choose the segment rule's settings (validation sessions)
    python benchmarks/bench_session.py --lengths 600 --sessions 0 --far-face 0.5 --out docs/session_far_face
        # a room camera: the samples' frames shrunk to half, the face ~27 px wide

1. **Length, time, memory.** Each recording is built at run time by looping the bundled sample clips
   (assets/clips/smile_upbeat.mp4, smile_low.mp4, in turn) with PyAV, packets copied, into a temporary folder that
   is removed afterwards. Each length is judged in a fresh process (``ClipScorer().score(path)``, the streaming
   path of ``python -m crossemo_core score``); reported: the analysis's wall time (models loaded and one 6 s
   sample judged before, to warm up: the load is reported apart), its CPU time, x real time (recording length /
   wall time), the process's peak resident memory (ru_maxrss, model loading included) and the number of windows.
   The load average of the machine is printed with each row: this benchmark shares 2 CPU cores with whatever else
   runs.
2. **The app on the hour.** In the 60-minute process, after the analysis: the Session page's timeline figure built
   and serialised (what ``st.plotly_chart`` sends), the segment table, and the page run in Streamlit's ``AppTest``
   with that result, then rerun after choosing a stretch to play (the server side of a click).
3. **Segment boundaries.** Sessions of ~2.5 minutes stitched from held-apart material (never used for training,
   selection or the combiner): one RAVDESS actor of 18-20 speaking takes of one valence after another (silence
   trimmed), and one FER2013 PublicTest half-B face (a 48 px photo drifting, as in scripts/eval_clip_heldapart.py)
   per stretch. Stretches of 20-40 s alternate between consistent (the face's valence = the voice's) and
   inconsistent; at each change the face, the voice or both change (recorded as the truth). Rendered as MP4 (H.264 +
   AAC, 25 fps) into a temporary folder. Each session is judged at the full face rate and at the half rate long
   recordings use (the two are compared). Reported: share of true boundaries with a segment boundary within 1 s
   (the goal: >= 90 %), within 2 s and 5 s; the share of detected boundaries within 1 s of a true one; which side
   changed, where the boundary was found; per-second agreement of the segments' outcome with the truth; and, as the
   bound the windows' evidence sets, the same with the true stretches given (each labelled by its windows' mean
   log-odds, as the rule labels a part). Only aggregates are written (no FER2013 row or RAVDESS file is named).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crossemo_core.paths import atomic_write, check_writable  # noqa: E402

if TYPE_CHECKING:
    from crossemo_core.clip.segments import SegmentRule

SAMPLES = [ROOT / "assets" / "clips" / "smile_upbeat.mp4", ROOT / "assets" / "clips" / "smile_low.mp4"]
VALENCE = ("negative", "neutral", "positive")
TARGETS = {"peak_rss_mb_60min": 1000, "x_real_time": 20, "boundaries_within_1s": 0.90, "app_interaction_s": 0.5}

CHILD = r"""
import json, os, resource, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
from crossemo_core.clip.verdict import ClipScorer
from crossemo_core.clip import session as sess
scorer = ClipScorer()
scorer.faces
load_s = time.perf_counter() - t0
scorer.score({warm!r})  # first calls compile and allocate (librosa's numba, torch): not part of the recording's time
load_avg = os.getloadavg()[0]
c0, t1 = time.process_time(), time.perf_counter()
analysis = sess.StreamAnalysis(scorer, {path!r})
v = analysis.run()
wall = time.perf_counter() - t1
out = dict(load_s=load_s, wall_s=wall, cpu_s=time.process_time() - c0, duration_s=v.duration_s,
           peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, windows=len(v.timeline),
           segments=len(v.segments), face_hold=analysis.face_hold, streamed=analysis.streaming,
           load_avg_before=load_avg, load_avg_after=os.getloadavg()[0])
if {app}:
    from crossemo_app import session_view as sv
    t = time.perf_counter(); fig = sv.timeline_figure(v); out["figure_build_s"] = time.perf_counter() - t
    t = time.perf_counter(); payload = fig.to_json(); out["figure_json_s"] = time.perf_counter() - t
    out["figure_json_mb"] = len(payload) / 1e6
    t = time.perf_counter(); sv.segments_frame(v); sv.segments_frame(v, None); out["tables_s"] = time.perf_counter() - t
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(os.path.join({root!r}, "app.py"), default_timeout=600)
    at.run()
    at.switch_page("pages/session.py")
    at.run()
    at.session_state["app"].session.result = v
    t = time.perf_counter(); at.run(); out["page_first_s"] = time.perf_counter() - t
    t = time.perf_counter(); at.run(); out["page_rerun_s"] = time.perf_counter() - t
    jump = at.selectbox(key="session_jump")
    if len(jump.options) > 1:
        t = time.perf_counter(); jump.set_value(jump.options[-1]).run()
        out["page_pick_stretch_s"] = time.perf_counter() - t
    out["page_errors"] = [str(e.value) for e in [*at.exception, *at.error]]
print("RESULT " + json.dumps(out))
"""


# ------------------------------------------------------------------------------------------------ 1. lengths
def far_samples(folder: Path, scale: float) -> list[Path]:
    """The bundled samples filmed from farther away (:func:`~crossemo_core.clip.synth.from_afar`), written to
    ``folder``: at 0.5 the face is ~27 px wide on the 640x360 frame, found by the tracker's tiled and near searches
    and read by the small-face network."""
    from crossemo_core.clip.synth import from_afar

    paths = []
    for sample in SAMPLES:
        paths.append(folder / f"far_{sample.name}")
        paths[-1].write_bytes(from_afar(sample.read_bytes(), scale))
    return paths


def run_length(seconds: float, folder: Path, app: bool, samples: list[Path]) -> dict:
    from crossemo_core.clip.synth import loop_media

    path = folder / f"loop_{int(seconds)}s.mp4"
    built = loop_media(samples, path, seconds)
    code = CHILD.format(root=str(ROOT), path=str(path), app=app, warm=str(samples[0]))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    path.unlink()
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"the {seconds:g} s run failed:\n{done.stderr[-3000:]}")
    out = json.loads(line[len("RESULT "):])
    out.update(length_s=seconds, built_s=built, x_real_time=out["duration_s"] / out["wall_s"],
               x_real_time_cpu=out["duration_s"] / out["cpu_s"])
    return out


# ------------------------------------------------------------------------------------------------ 3. stitched
def trimmed(signal: np.ndarray, sr: int) -> np.ndarray:
    """The take without its leading and trailing silence (frames 35 dB below the loudest), 0.1 s kept each side."""
    frame = int(0.025 * sr)
    n = len(signal) // frame
    rms = np.sqrt(np.mean(signal[: n * frame].reshape(n, frame).astype(np.float64) ** 2, axis=1))
    db = 20 * np.log10(np.maximum(rms, 1e-9))
    loud = np.flatnonzero(db > db.max() - 35)
    a, b = max(0, loud[0] * frame - int(0.1 * sr)), min(len(signal), (loud[-1] + 1) * frame + int(0.1 * sr))
    return signal[a:b]


def make_session(actor_takes: dict[int, list[np.ndarray]], pool, rng: np.random.Generator,  # noqa: ANN001
                 seconds: float = 150.0) -> tuple[bytes, list[dict], list[tuple[float, float, str]]]:
    """One stitched session: its MP4 bytes, its stretches (start, end, state, face/voice valence) and its true
    boundaries (time, new state, which side changed)."""
    from crossemo_core.clip import synth

    sr = synth.AUDIO_RATE
    stretches, boundaries = [], []
    t = 0.0
    state = "consistent" if rng.random() < 0.5 else "inconsistent"
    fv = int(rng.integers(3))
    vv = fv if state == "consistent" else int(rng.choice([v for v in range(3) if v != fv]))
    face_row = pool.sample(fv, rng)
    audio_parts: list[np.ndarray] = []
    while t < seconds - 10:
        length = float(min(rng.uniform(20, 40), seconds - t))
        stretches.append({"start": t, "end": t + length, "state": state, "face": fv, "voice": vv, "row": face_row})
        need = int(round(length * sr))
        got = 0
        while got < need:  # takes of the voice's valence, 0.2 s apart, the last one cut at the stretch's end
            take = actor_takes[vv][int(rng.integers(len(actor_takes[vv])))]
            piece = np.concatenate([take, np.zeros(int(0.2 * sr), np.float32)])[: need - got]
            audio_parts.append(piece)
            got += len(piece)
        t += need / sr
        if t >= seconds - 10:
            break
        new_state = "inconsistent" if state == "consistent" else "consistent"
        side = str(rng.choice(["face", "voice", "both"], p=[0.4, 0.4, 0.2]))
        if side == "voice":
            vv = fv if new_state == "consistent" else int(rng.choice([v for v in range(3) if v not in (fv, vv)]))
        elif side == "face":
            fv = vv if new_state == "consistent" else int(rng.choice([v for v in range(3) if v not in (vv, fv)]))
            face_row = pool.sample(fv, rng)
        else:
            old_f, old_v = fv, vv
            options = [(f, v) for f in range(3) for v in range(3) if f != old_f and v != old_v
                       and (f == v) == (new_state == "consistent")]
            fv, vv = options[int(rng.integers(len(options)))]
            face_row = pool.sample(fv, rng)
        boundaries.append((t, new_state, side))
        state = new_state
    audio = np.concatenate(audio_parts).astype(np.float32)
    fps = 25
    phase = rng.uniform(0, 2 * np.pi, 3)
    starts = np.array([s["start"] for s in stretches])

    def frame(i: int) -> np.ndarray:
        k = int(np.searchsorted(starts, i / fps, side="right") - 1)
        face = pool.images[stretches[k]["row"]]
        return synth.place((240, 320), face, int(150 + 4 * np.sin(i / 17 + phase[0])),
                           160 + 6 * np.sin(i / 23 + phase[1]), 120 + 4 * np.sin(i / 29 + phase[2]), background=110)

    data = synth.encode_video(frame, int(np.ceil(len(audio) / sr * fps)), fps, audio, container="mp4", crf=26)
    for s in stretches:
        s.pop("row")
    return data, stretches, boundaries


def evaluate(segments: list, duration_s: float, stretches: list[dict], boundaries: list[tuple]) -> dict:
    """Boundary and outcome agreement of one judged session's segments with its truth."""
    found = [s.start for s in segments[1:]]
    truth = [b[0] for b in boundaries]
    nearest = [min((abs(f - t) for f in found), default=np.inf) for t in truth]
    sides = []
    for (t, _, side) in boundaries:
        near = [s for s in segments[1:] if abs(s.start - t) <= 2.0]
        if near:
            seg = min(near, key=lambda s: abs(s.start - t))
            sides.append(seg.changed == side)
    # per-second outcome
    seconds = np.arange(0.5, duration_s, 1.0)
    agree = judged = 0
    for x in seconds:
        truth_state = next((s["state"] for s in stretches if s["start"] <= x < s["end"]), None)
        seg = next((s for s in segments if s.start <= x < s.end), None)
        if truth_state is None or seg is None or seg.outcome == "undetermined":
            continue
        judged += 1
        agree += seg.outcome == truth_state
    return {"nearest": nearest, "detected": len(found),
            "detected_within_1s": sum(any(abs(f - t) <= 1.0 for t in truth) for f in found),
            "side_correct": sides, "seconds_agree": agree, "seconds_judged": judged,
            "seconds_total": len(seconds)}


def stitched(args: argparse.Namespace) -> dict:
    from dataclasses import replace

    from crossemo_core.clip import corpus
    from crossemo_core.clip.decode import NamedBytes
    from crossemo_core.clip.segments import SegmentRule
    from crossemo_core.clip.session import StreamAnalysis
    from crossemo_core.clip.verdict import ClipScorer
    from crossemo_core.data.labels import ravdess_emotion_to_3class
    from crossemo_core.features.voice import load_audio

    part = args.part
    pool = corpus.fer_pools(args.data / "fer2013" / "fer2013.npz")[part]
    actors = corpus.ACTORS[part]
    takes: dict[int, dict[int, list[np.ndarray]]] = {}
    for a in actors:
        takes[a] = {0: [], 1: [], 2: []}
        for p in sorted((args.data / "ravdess" / "audio" / f"Actor_{a:02d}").glob("03-01-*.flac")):
            if p.stem in corpus.DUPLICATE_TAKES:
                continue
            valence = int(ravdess_emotion_to_3class(np.array([int(p.stem.split("-")[2])]))[0])
            signal, sr = load_audio(p)
            takes[a][valence].append(trimmed(signal, sr))
    rng = np.random.default_rng(args.seed)
    scorer = ClipScorer()
    runs = {"full": [], "half": []}
    started = time.perf_counter()
    for k in range(args.sessions):
        actor = actors[k % len(actors)]
        data, stretches, boundaries = make_session(takes[actor], pool, rng, args.session_s)
        clip = NamedBytes(f"session_{k}.mp4", data)
        for rate, above in (("full", 1e9), ("half", 0.0)):
            if rate == "half" and not args.half_rate:
                continue
            v = StreamAnalysis(scorer, clip, session_above_s=above).run()
            runs[rate].append((v, stretches, boundaries))
        print(f"  stitched session {k + 1}/{args.sessions}: {len(boundaries)} boundaries, "
              f"{len(runs['full'][-1][0].segments)} segments found ({time.perf_counter() - started:.0f} s)",
              flush=True)
    scorer.close()
    out: dict = {"part": part, "seed": args.seed, "sessions": args.sessions, "session_s": args.session_s,
                 "what": f"RAVDESS actors {actors} x FER2013 PublicTest {'half B' if part == 'heldout' else 'half A'}",
                 "rule": vars(SegmentRule())}
    for rate, items in runs.items():
        if items:
            out[rate] = summarise_boundaries([evaluate(v.segments, v.duration_s, s, b) for v, s, b in items])
    if runs["half"]:
        diffs, agree, total = [], 0, 0
        for (a, _, _), (b, _, _) in zip(runs["full"], runs["half"]):
            for x, y in zip(a.timeline, b.timeline):
                if x.p_inconsistent is not None and y.p_inconsistent is not None:
                    diffs.append(abs(x.p_inconsistent - y.p_inconsistent))
            for t in np.arange(0.5, a.duration_s, 1.0):
                sa = next((s.outcome for s in a.segments if s.start <= t < s.end), None)
                sb = next((s.outcome for s in b.segments if s.start <= t < s.end), None)
                total += 1
                agree += sa == sb
        out["half_vs_full"] = {"window_p_mean_abs_diff": float(np.mean(diffs)), "window_p_max_abs_diff":
                               float(np.max(diffs)), "seconds_same_outcome": agree / max(total, 1)}
    if runs["full"]:  # the true stretches given
        out["true_stretches"] = true_stretch_bound(runs["full"])
    if args.sweep:  # the rule's two settings: segments recomputed from the same windows
        sweep = []
        for scale in (0.25, 0.5, 1.0):
            for penalty in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0):
                rule = replace(SegmentRule(), evidence_scale=scale, change_penalty=penalty)
                sweep.append({"evidence_scale": scale, "change_penalty": penalty,
                              **summarise_boundaries(recomputed(runs["full"], rule))})
        out["sweep"] = sweep
    return out


def recomputed(items: list[tuple], rule: SegmentRule) -> list[dict]:
    """Evaluations of judged sessions with their segments recomputed from the same windows under ``rule``."""
    from crossemo_core.clip.segments import segments_of

    return [evaluate(segments_of(v.timeline, v.duration_s, rule), v.duration_s, s, b) for v, s, b in items]


def true_stretch_bound(items: list[tuple]) -> dict:
    """With the true stretches given, each labelled as the rule labels a part (its judged windows' mean clipped
    log-odds above 0): the share of stretches labelled right and of true boundaries whose two sides get different
    outcomes. A reference for what a segmentation of these windows can find, not a strict bound: a partition that
    cuts a stretch elsewhere can, by luck, give the two sides of a boundary different outcomes."""
    from crossemo_core.clip.segments import SegmentRule, log_odds, window_evidence

    clip = SegmentRule().p_clip
    right = labelled = found = pairs = 0
    for v, stretches, _ in items:
        outcomes = []
        for s in stretches:
            inside = [window_evidence(w) for w in v.timeline
                      if w.start >= s["start"] - 1e-6 and w.end <= s["end"] + 1e-6]
            p = [x for x in inside if x is not None]
            outcome = None if not p else bool(log_odds(p, clip).mean() > 0)
            outcomes.append(outcome)
            if outcome is not None:
                labelled += 1
                right += outcome == (s["state"] == "inconsistent")
        for a, b in zip(outcomes[:-1], outcomes[1:]):
            pairs += 1
            found += a is not None and b is not None and a != b
    return {"stretches_labelled": labelled, "stretch_outcome_right": right / max(labelled, 1),
            "true_boundaries": pairs, "boundaries_found": found / max(pairs, 1)}


def summarise_boundaries(evals: list[dict]) -> dict:
    nearest = np.array([x for e in evals for x in e["nearest"]])
    detected = sum(e["detected"] for e in evals)
    sides = [x for e in evals for x in e["side_correct"]]
    recall = float(np.mean(nearest <= 1.0)) if len(nearest) else None
    precision = sum(e["detected_within_1s"] for e in evals) / max(detected, 1)
    return {"true_boundaries": int(len(nearest)), "detected_boundaries": int(detected),
            "within_1s": recall,
            "within_2s": float(np.mean(nearest <= 2.0)) if len(nearest) else None,
            "within_5s": float(np.mean(nearest <= 5.0)) if len(nearest) else None,
            "median_error_s_when_within_5s": float(np.median(nearest[nearest <= 5])) if np.any(nearest <= 5) else None,
            "detected_within_1s_of_truth": precision,
            "f1_within_1s": 2 * recall * precision / (recall + precision) if recall and precision else 0.0,
            "side_correct_where_found_2s": float(np.mean(sides)) if sides else None, "sides_found": len(sides),
            "seconds_outcome_agree": sum(e["seconds_agree"] for e in evals) / max(sum(e["seconds_judged"]
                                                                                     for e in evals), 1),
            "seconds_judged_share": sum(e["seconds_judged"] for e in evals) / max(sum(e["seconds_total"]
                                                                                     for e in evals), 1)}


# ------------------------------------------------------------------------------------------------ output
def markdown(result: dict) -> str:
    lines = ["# Whole sessions: time, memory, boundaries (`python benchmarks/bench_session.py`)", "",
             f"Machine: {os.cpu_count()} CPU cores visible, no GPU; {result['when']}. The load average (1 min) of the "
             "machine is given per row: other jobs shared these cores.", ""]
    if result.get("lengths") and result.get("far_face"):
        lines += [f"The recordings loop the samples filmed from farther away: every frame shrunk by "
                  f"{result['far_face']:g} and drawn in the middle of a grey frame of its size.", ""]
    if result.get("lengths"):
        lines += ["| recording | wall s (analysis) | x real time | CPU s | peak RSS MB (process) | windows | faces "
                  "tracked at | load avg before / after |", "|---|---|---|---|---|---|---|---|"]
    for r in result.get("lengths", []):
        lines.append(f"| {_length(r['length_s'])} ({r['duration_s']:.0f} s) | {r['wall_s']:.1f} | "
                     f"**{r['x_real_time']:.1f}** | {r['cpu_s']:.1f} | **{r['peak_rss_mb']:.0f}** | {r['windows']:,} | "
                     f"{'5' if r['face_hold'] == 1 else '2.5'}/s | {r['load_avg_before']:.1f} / "
                     f"{r['load_avg_after']:.1f} |")
    if result.get("lengths"):
        lines += ["", "Models load once per process before the analysis (then one 6 s sample is judged to warm up): "
                  + ", ".join(f"{r['load_s']:.1f} s" for r in result["lengths"]) + ".", ""]
    hour = next((r for r in result.get("lengths", []) if "figure_build_s" in r), None)
    if hour:
        lines += ["**The app on the longest recording** (server side): timeline figure built "
                  f"{hour['figure_build_s']:.2f} s and serialised {hour['figure_json_s']:.2f} s "
                  f"({hour['figure_json_mb']:.1f} MB), segment tables {hour['tables_s']:.2f} s; the Session page run "
                  f"with the result {hour['page_first_s']:.2f} s the first time, {hour['page_rerun_s']:.2f} s again, "
                  f"{hour.get('page_pick_stretch_s', float('nan')):.2f} s after choosing a stretch to play "
                  "(AppTest reruns the whole page; in the browser a choice reruns only the results fragment, and "
                  "zooming the timeline is plotly's own, in the browser).", ""]
    b = result.get("boundaries")
    if b:
        rule = b["rule"]
        lines += [f"**Segment boundaries** on {b['sessions']} stitched sessions of ~{b['session_s']:.0f} s "
                  f"({b['what']}, seed {b.get('seed', 0)}; segment rule: change penalty {rule['change_penalty']:g}, "
                  f"evidence scale {rule['evidence_scale']:g}; "
                  "the rule's settings were chosen on validation sessions, docs/session_rule_valid.md):", "",
                  "| face rate | true boundaries | within 1 s | within 2 s | within 5 s | median error (<= 5 s) | "
                  "detected | detected within 1 s of a true one | F1 (1 s) | side right (found within 2 s) | "
                  "seconds with the true outcome |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for rate in ("full", "half"):
            s = b.get(rate)
            if s:
                label = {"full": "5/s", "half": "2.5/s (long recordings)"}[rate]
                lines.append(f"| {label} | {s['true_boundaries']} | "
                             f"**{_pct(s['within_1s'])}** | {_pct(s['within_2s'])} | {_pct(s['within_5s'])} | "
                             f"{_num(s['median_error_s_when_within_5s'])} s | {s['detected_boundaries']} | "
                             f"{_pct(s['detected_within_1s_of_truth'])} | {s['f1_within_1s']:.2f} | "
                             f"{_pct(s['side_correct_where_found_2s'])} ({s['sides_found']}) | "
                             f"{_pct(s['seconds_outcome_agree'])} |")
        t = b.get("true_stretches")
        if t:
            lines += ["", f"**What the windows allow**: with the true stretches given, each labelled as the rule "
                      f"labels a part (its windows' mean log-odds), {_pct(t['stretch_outcome_right'])} of the "
                      f"{t['stretches_labelled']} stretches get the right outcome and {_pct(t['boundaries_found'])} of "
                      f"the {t['true_boundaries']} true boundaries separate two different outcomes. A boundary is "
                      "found only where the outcomes on its two sides differ, so a segmentation of these windows finds "
                      "about that many (a few more or fewer by luck); better window evidence, i.e. better readers, is "
                      "what moves it."]
        h = b.get("half_vs_full")
        if h:
            lines += ["", f"Half face rate against full rate on the same sessions: window probability differs by "
                      f"{h['window_p_mean_abs_diff']:.3f} on average (at most {h['window_p_max_abs_diff']:.2f}); "
                      f"the segments' outcome is the same in {100 * h['seconds_same_outcome']:.1f} % of the seconds."]
        if b.get("sweep"):
            lines += ["", "The rule's settings (segments recomputed from the same windows; F1 of boundaries found "
                      "within 1 s and found ones within 1 s of a true one):", "",
                      "| evidence scale | change penalty | within 1 s | detected | detected within 1 s of a true one "
                      "| F1 (1 s) | seconds with the true outcome |", "|---|---|---|---|---|---|---|"]
            for s in b["sweep"]:
                lines.append(f"| {s['evidence_scale']:g} | {s['change_penalty']:g} | {_pct(s['within_1s'])} | "
                             f"{s['detected_boundaries']} | {_pct(s['detected_within_1s_of_truth'])} | "
                             f"{s['f1_within_1s']:.2f} | {_pct(s['seconds_outcome_agree'])} |")
    lines += ["", "Targets (issue 17): peak memory <= 1 GB for 60 minutes; >= 20x real time on 2 cores; boundaries "
              "within 1 s in >= 90 % of cases; timeline interactions under 0.5 s.", ""]
    return "\n".join(lines)


def _length(s: float) -> str:
    return f"{s / 60:g} min" if s >= 60 else f"{s:g} s"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f} %"


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=float, nargs="*", default=[30, 600, 3600], help="recording lengths (s)")
    ap.add_argument("--sessions", type=int, default=9, help="stitched sessions (0: none)")
    ap.add_argument("--session-s", type=float, default=150.0)
    ap.add_argument("--part", choices=("heldout", "valid"), default="heldout")
    ap.add_argument("--sweep", action="store_true",
                    help="also recompute segments under other settings of the segment rule")
    ap.add_argument("--no-half-rate", dest="half_rate", action="store_false")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "session_benchmark", help="writes OUT.md and OUT.json")
    ap.add_argument("--markdown-only", action="store_true", help="rewrite OUT.md from OUT.json (no measuring)")
    ap.add_argument("--far-face", type=float, default=None, metavar="SCALE",
                    help="loop the samples with every frame shrunk by SCALE on a grey frame (0.5: a ~27 px face, "
                         "a room camera's)")
    args = ap.parse_args()
    md, js = args.out.with_suffix(".md"), args.out.with_suffix(".json")
    check_writable(md, "--out")
    if args.markdown_only:
        atomic_write(md, markdown(json.loads(js.read_text())).encode())
        print(f"written {md}")
        return 0
    result: dict = {"command": "python " + " ".join(sys.argv), "when": time.strftime("%Y-%m-%d"),
                    "cpu_cores": os.cpu_count(), "targets": TARGETS, "lengths": [], "far_face": args.far_face}
    with tempfile.TemporaryDirectory(prefix="crossemo-bench-session-") as tmp:
        samples = SAMPLES if args.far_face is None else far_samples(Path(tmp), args.far_face)
        for i, seconds in enumerate(args.lengths):
            r = run_length(seconds, Path(tmp), app=i == len(args.lengths) - 1, samples=samples)
            result["lengths"].append(r)
            print(f"{_length(seconds)}: wall {r['wall_s']:.1f} s, {r['x_real_time']:.1f}x real time (CPU "
                  f"{r['cpu_s']:.1f} s), peak RSS {r['peak_rss_mb']:.0f} MB, {r['windows']} windows, load "
                  f"{r['load_avg_before']:.1f}/{r['load_avg_after']:.1f}", flush=True)
    if args.sessions:
        if not (args.data / "ravdess" / "audio").is_dir() or not (args.data / "fer2013" / "fer2013.npz").is_file():
            print(f"segment boundaries: skipped, {args.data} has no RAVDESS audio or FER2013 (../shared/data)")
        else:
            result["boundaries"] = stitched(args)
            for rate in ("full", "half"):
                s = result["boundaries"].get(rate)
                if s:
                    print(f"boundaries ({rate} face rate): {s['true_boundaries']} true, within 1 s "
                          f"{_pct(s['within_1s'])}, within 2 s {_pct(s['within_2s'])}; {s['detected_boundaries']} "
                          f"detected, {_pct(s['detected_within_1s_of_truth'])} of them within 1 s of a true one")
    text = markdown(result)
    atomic_write(js, json.dumps(result, indent=1, default=float).encode())
    atomic_write(md, text.encode())
    print(text)
    print(f"written {md} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
