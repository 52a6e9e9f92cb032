"""Streaming analysis: a recording of any length (a whole therapy session) judged in bounded memory.

decode (:func:`~crossemo_core.clip.decode.open_media`, frames and audio in time order) -> face tracker on each
sampled frame (pixels dropped at once) -> every :data:`DEFAULT_CHUNK_S` seconds of media, in a second thread: the
readers on the frames and audio decoded since (:mod:`.reading`), the windows whose data is complete
(:mod:`.windows`), their scores (:mod:`.score`; the voice reader's per-window work in a third thread) -> at the end,
the verdict, the segments and the session summary (:mod:`.verdict`, :mod:`.segments`). What is kept of the whole
recording: per window its result, per frame a few numbers (face found, geometry), a thumbnail about every second
(sparser past 400) and the waveform's envelope: a few kB per second of media (an hour peaks at ~0.9 GB with the
models, measured by benchmarks/bench_session.py).

A recording no longer than :data:`DEFAULT_WHOLE_S` is read whole in one piece, exactly as before streaming existed,
so short clips get the same verdicts. A longer one needs two numbers of the whole recording before its voice
features can be computed (the loudness gain and the loudest frame after it); they come from two quick passes over
the audio alone (:func:`~crossemo_core.clip.reading.scan_loudness`), so that every window is scored as a whole-file
pass would score it, wherever the pieces are cut. A recording declared longer than :data:`SESSION_ABOVE_S` is tracked
at half the face rate (:attr:`StreamAnalysis.face_hold`).

``progress(done_s, total_s, eta_s)`` is called about every second of media (``total_s`` / ``eta_s`` None when the
file does not declare its length). ``should_stop()`` is checked after every decoded frame: when it returns True,
the analysis ends early with the verdict of what was analysed (:attr:`ClipVerdict.partial` says so). Ctrl-C
(:class:`KeyboardInterrupt`) raises :class:`AnalysisInterrupted`, which carries that partial verdict.

**Resuming.** ``on_windows(windows)`` is called (from the reading thread) with each run of windows as they are
finished, in order, in whole batches of the voice reader (not the last ones, which end with the recording or with a
stop). An analysis given those windows back as
``resume`` (the same recording) decodes and tracks the recording again from the start (the face log, thumbnails,
waveform and voice features stay those of the whole recording), but reads, windows and scores only from the first
window not finished: the windows after it are those an uninterrupted analysis gives (the voice reader's batches
start where they started before). A recording read whole (:data:`DEFAULT_WHOLE_S`) is simply analysed again.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.decode import AUDIO_RATE, AudioBlock, MediaStream, Source, VideoSample, open_media
from crossemo_core.clip.face import FaceFrame
from crossemo_core.clip.reading import (SILENCE_PEAK, ClipFacts, FaceLog, Loudness, ThumbPicker, read_faces, read_still,
                                        scan_loudness)
from crossemo_core.clip.score import RECORDING_READ_S, Calibration
from crossemo_core.clip.windows import WindowBuilder

if TYPE_CHECKING:
    from crossemo_core.clip.score import Window
    from crossemo_core.clip.verdict import ClipScorer, ClipVerdict

DEFAULT_CHUNK_S = 10.0
"""Seconds of media in each piece of a long recording: the readers and the model run on this much at a time (the
voice features' transient memory grows with it: ~2.4 MB per second of audio)."""
DEFAULT_WHOLE_S = 60.0
"""A recording no longer than this (plus the voice margin) is read whole, exactly as before streaming existed."""
PROGRESS_EVERY_S = 1.0
SESSION_ABOVE_S = 600.0
"""A recording declared longer than this (10 minutes) is tracked at half the face rate, each reading standing for
the frame after it too (:attr:`StreamAnalysis.face_hold`): 2.5 frames/s instead of 5 (see docs/clip.md,
"Sessions", for what it costs in agreement with the full rate)."""
FACE_GROUP = 50
"""Frames whose crops are read by the face networks at once in a long recording (10 s at 5 frames/s): reading the
300 crops of the first minute at once held ~220 MB of activations."""
HEAD_HELD_S = RECORDING_READ_S + 1.0
"""A recording's first seconds whose audio and voice features are held for its clip-level voice reading (the
recording read as one, :data:`~crossemo_core.clip.score.RECORDING_READ_S`, with a second to spare)."""

ProgressFn = Callable[[float, "float | None", "float | None"], None]


class AnalysisInterrupted(KeyboardInterrupt):
    """Ctrl-C during a streaming analysis: ``partial`` is the verdict of what was analysed before it (None when
    nothing was), ``done_s`` / ``total_s`` how far it got."""

    def __init__(self, partial: "ClipVerdict | None", done_s: float, total_s: float | None) -> None:
        super().__init__("interrupted")
        self.partial, self.done_s, self.total_s = partial, done_s, total_s


@dataclass
class _Piece:
    """What the decoding thread hands to the reading thread: frames tracked and audio decoded since the last piece,
    and how far decoding had got."""

    frames: list[FaceFrame]
    blocks: list[AudioBlock]
    final: bool
    video_t: float
    video_done: bool
    audio_n: int


class StreamAnalysis:
    """One streaming analysis of ``source`` (with ``voice`` from another file when given): :meth:`run` -> the
    :class:`~crossemo_core.clip.verdict.ClipVerdict`. See the module docstring.

    Two threads share the work on a long recording: this one decodes and tracks faces (mediapipe), a reading thread
    runs the face and voice readers, windows and scores each piece meanwhile (at most one piece waits between them).
    A recording read whole is read in this thread, beside a thread for its windows' voice readings. ``face_hold``:
    1, or 2 when the recording is declared longer than ``session_above_s``: faces are then tracked at half the
    model's rate and each reading also stands for the sampled frame after it."""

    def __init__(self, scorer: "ClipScorer", source: Source, voice: Source | None = None,
                 calibration: Calibration | None = None, *, chunk_s: float = DEFAULT_CHUNK_S,
                 whole_s: float = DEFAULT_WHOLE_S, session_above_s: float = SESSION_ABOVE_S,
                 progress: ProgressFn | None = None, should_stop: Callable[[], bool] | None = None,
                 resume: Sequence["Window"] = (), on_windows: Callable[[list["Window"]], None] | None = None) -> None:
        self.scorer, self.source, self.voice_source = scorer, source, voice
        self.resume, self.on_windows = list(resume), on_windows
        self._skip_before = 0.0  # a resumed analysis reads no face before this time (its windows are finished)
        self.cal = calibration or Calibration()
        self.chunk_s, self.whole_s, self.session_above_s = float(chunk_s), float(whole_s), float(session_above_s)
        self.progress, self.should_stop = progress, should_stop
        self.fps = scorer.limits.fps
        self.face_hold = 1
        self.builder = WindowBuilder(self.fps, hold_voice_s=HEAD_HELD_S)  # its voice read as a whole
        self.windows_scorer = scorer.window_scorer(self.cal, self.builder)
        self._threaded_reads = True
        self.windows: list[Any] = []
        self.facelog = FaceLog()
        self.thumbs = ThumbPicker()
        self.loudness: Loudness | None = None
        self.streaming = False  # True once the first piece went to the reading thread; until then all is kept
        self._frames: list[FaceFrame] = []  # tracked, not handed on yet
        self._blocks: list[AudioBlock] = []  # decoded, not handed on yet
        self._audio_n = 0  # aligned samples decoded
        self._env: list[np.ndarray] = []
        self._env_carry = np.zeros(0, np.float32)
        self._video_t = 0.0
        self._video_done = False
        self._audio_done = False
        self._voice_done = 0  # voice frames computed (streaming)
        self._speech_frames = 0
        self._head: list[np.ndarray] = []  # the first RECORDING_READ_S of audio (the clip's voice reading)
        self._head_n = 0
        self._still: FaceFrame | None = None
        self._still_n = 0
        self._next_piece = self.whole_s + seq.VOICE_MARGIN_S
        self._started = 0.0
        self._last_report = -np.inf
        self._queue: queue.Queue | None = None
        self._worker: threading.Thread | None = None
        self._error: BaseException | None = None  # the reading thread's, until raised in the decoding thread
        # Once the reading thread failed it reads no further piece: the decoding thread may then build a partial
        # verdict from what was finished while pieces are still queued.
        self._failed = False
        self.main: MediaStream | None = None
        self.voice: MediaStream | None = None

    # -------------------------------------------------------------------------------------------- running
    @property
    def total_s(self) -> float | None:
        stream = self.voice if self.voice is not None else self.main
        return None if stream is None else stream.expected_s

    @property
    def done_s(self) -> float:
        """Seconds of the recording decoded and tracked so far."""
        parts = []
        if not self._video_done and self.main is not None and self.main.use_video:
            parts.append(self._video_t)
        if not self._audio_done:
            parts.append(self._audio_n / AUDIO_RATE)
        return min(parts) if parts else max(self._video_t, self._audio_n / AUDIO_RATE)

    def run(self) -> "ClipVerdict":
        import torch

        scorer = self.scorer
        self._started = time.perf_counter()
        faces = scorer.faces
        faces.reset()
        limits = scorer.limits
        threads = torch.get_num_threads()
        # Small batches: a second BLAS / OpenMP / intra-op thread spins more than it helps (measured: 2 threads took
        # 41.7 s for 3 min of media, 1 thread 17.0 s); the two threads of this analysis use the two cores instead.
        torch.set_num_threads(1)
        limits_blas = _single_threaded_blas()
        try:
            self.main = open_media(self.source, limits=limits, want_audio=self.voice_source is None, need_video=True,
                                   need_audio=self.voice_source is None)
            if self.voice_source is not None:
                self.voice = open_media(self.voice_source, limits=limits, want_video=False, need_audio=True)
            if self.main.is_image:
                self._still = faces.analyse(0.0, self.main.image, still=True)
            elif (self.main.expected_s or 0.0) > self.session_above_s and self.fps >= 4:
                self.face_hold = 2
                self.main.limits = replace(limits, fps=self.fps / 2)
            try:
                stopped = self._decode(faces)
            except KeyboardInterrupt:
                done = self.done_s
                raise AnalysisInterrupted(self._partial_safely("interrupted"), done, self.total_s) from None
            if stopped:
                return self._partial_safely("stopped")
            return self._finish()
        finally:
            self._stop_worker()
            self.windows_scorer.close()
            torch.set_num_threads(threads)
            limits_blas.restore_original_limits() if limits_blas is not None else None
            for stream in (self.main, self.voice):
                if stream is not None:
                    stream.close()

    def _events(self) -> Iterator[VideoSample | AudioBlock]:
        """The main file's events, merged in time order with the separate voice file's when there is one."""
        if self.voice is None:
            yield from self.main
            return
        video, audio = iter(self.main), iter(self.voice)
        v_t, a_t = 0.0, 0.0
        while video is not None or audio is not None:
            take_video = video is not None and (audio is None or v_t <= a_t)
            source = video if take_video else audio
            try:
                event = next(source)
            except StopIteration:
                if take_video:
                    video, self._video_done = None, True
                else:
                    audio, self._audio_done = None, True
                continue
            if isinstance(event, VideoSample):
                v_t = event.t
            else:
                a_t = event.end / AUDIO_RATE
            yield event

    def _decode(self, faces: Any) -> bool:
        """Decode and track everything, handing it on a piece at a time; True when asked to stop."""
        for event in self._events():
            if isinstance(event, VideoSample):
                self._track(faces.analyse(event.t, event.rgb))
                self._video_t = event.t
            else:
                self._add_audio(event)
            if self.should_stop is not None and self.should_stop():
                return True
            done = self.done_s
            if done >= self._next_piece:
                self._submit(final=False)
                self._next_piece = done + self.chunk_s
            if done - self._last_report >= PROGRESS_EVERY_S:
                self._report(done)
        self._video_done = self._audio_done = True
        return False

    def _track(self, frame: FaceFrame) -> None:
        frames = [frame]
        if self.face_hold > 1:  # the reading also stands for the frame(s) not sampled after it
            frames += [_Held(t=frame.t + k / self.fps, n_faces=frame.n_faces, crop=frame.crop,
                             from_mesh=frame.from_mesh) for k in range(1, self.face_hold)]
        self._frames += frames
        self.facelog.add(frames)
        self.thumbs.add(frame.t, frame.thumb)

    def _add_audio(self, block: AudioBlock) -> None:
        self._blocks.append(block)
        self._audio_n = block.end
        x = block.samples
        joined = np.concatenate([self._env_carry, x]) if len(self._env_carry) else x
        k = AUDIO_RATE // 100
        m = len(joined) // k
        if m:
            self._env.append(np.abs(joined[: m * k]).reshape(m, k).max(1).astype(np.float32))
        self._env_carry = joined[m * k:]

    def _report(self, done: float) -> None:
        self._last_report = done
        if self.progress is None:
            return
        total = self.total_s
        elapsed = time.perf_counter() - self._started
        eta = None if not total or done <= 0 else max(0.0, elapsed * (total - done) / done)
        self.progress(done, total, eta)

    # -------------------------------------------------------------------------------------------- handing on
    def _submit(self, final: bool) -> None:
        """Hand what was decoded since the last piece to the reading thread (when ``final``: everything, and wait
        until it is read and scored). A recording that ends before its first piece is read whole, here."""
        piece = _Piece(self._frames, self._blocks, final, self._video_t, self._video_done, self._audio_n)
        self._frames, self._blocks = [], []
        if not self.streaming and final:
            self._whole(piece)
            return
        if self._worker is None:
            self.streaming = True
            if self._threaded_reads:  # a third thread for the voice reader's per-window work
                self.windows_scorer = self.scorer.window_scorer(self.cal, self.builder, threaded_reads=True)
            if self.resume:  # windows finished by an interrupted analysis: decoded and tracked again, not scored
                self.windows = list(self.resume)
                self.builder.produced = len(self.resume)
                self.windows_scorer.restore(self.resume)
                self._skip_before = len(self.resume) * seq.HOP_S
            self._queue = queue.Queue(maxsize=1)
            self._worker = threading.Thread(target=self._work, name="crossemo-clip-reading", daemon=True)
            self._worker.start()
        while True:
            self._raise_worker_error()
            try:
                self._queue.put(piece, timeout=0.2)
                break
            except queue.Full:
                continue
        if final:
            self._drain()

    def _drain(self) -> None:
        """Wait until the reading thread has read and scored every piece handed on."""
        if self._queue is not None:
            while self._queue.unfinished_tasks:
                self._raise_worker_error()
                time.sleep(0.02)
        self._raise_worker_error()

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _work(self) -> None:
        while True:
            piece = self._queue.get()
            try:
                if piece is None:
                    return
                if not self._failed:
                    self._piece(piece)
            except BaseException as exc:  # noqa: BLE001 - handed to the decoding thread
                self._error, self._failed = exc, True
            finally:
                self._queue.task_done()

    def _stop_worker(self) -> None:
        if self._worker is not None and self._worker.is_alive():
            try:
                self._queue.put(None, timeout=5)
            except queue.Full:
                pass

    # -------------------------------------------------------------------------------------------- reading
    def _audio_source(self) -> tuple[Source, float | None]:
        if self.voice is not None:
            return self.voice.source, None
        return self.main.source, self.main.time_zero

    def _scan(self) -> Loudness:
        source, zero = self._audio_source()
        limits = self.scorer.limits

        def blocks() -> Iterator[AudioBlock]:
            with open_media(source, limits=limits, want_video=False, need_audio=True, time_zero=zero) as s:
                for event in s:
                    if isinstance(event, AudioBlock):
                        yield event

        return scan_loudness(blocks)

    def _read_frames(self, piece: _Piece) -> None:
        """Read the piece's tracked frames (or, for a photo, the frames it stands for so far) and hand them on."""
        scorer, final = self.scorer, piece.final
        if self._still is not None:
            seconds = piece.audio_n / AUDIO_RATE
            n = max(1, int(np.ceil(seconds * self.fps))) if final else int(np.ceil(seconds * self.fps))
            if n > self._still_n:
                s = self._still
                frames = [replace(s, t=i / self.fps) for i in range(self._still_n, n)]
                for f in frames:
                    self.thumbs.add(f.t, f.thumb)
                self.facelog.add(frames)
                self.builder.add_faces(read_still(s, n - self._still_n, self.fps, scorer.model.expression,
                                                  scorer.face_reader, first=self._still_n),
                                       float("inf") if final else seconds)
                self._still_n = n
            return
        frames = piece.frames
        until = float("inf") if final or piece.video_done else piece.video_t
        if self._skip_before > 0:  # resumed: the frames of finished windows are not read (1 s kept for held frames)
            frames = [f for f in frames if f.t >= self._skip_before - 1.0]
            if not frames:
                from crossemo_core.clip.reading import FaceReadings

                self.builder.add_faces(FaceReadings(), until)
                return
        step = FACE_GROUP * self.face_hold if self.streaming else max(1, len(frames))
        for i in range(0, max(1, len(frames)), step):  # small groups: the networks' activations stay small
            group = frames[i:i + step]
            self.builder.add_faces(self._read_group(group), until if i + step >= len(frames) else group[-1].t)

    def _read_group(self, frames: list[FaceFrame]) -> Any:
        scorer = self.scorer
        real = [f for f in frames if not isinstance(f, _Held)]
        readings = read_faces(real, scorer.model.expression, scorer.face_reader)
        return readings if len(real) == len(frames) else _hold(readings, frames)

    def _piece(self, piece: _Piece) -> None:
        """Read, window and score a piece (to the end of the recording when it is the last)."""
        final = piece.final
        if self.loudness is None:
            self.loudness = self._scan() if piece.audio_n else Loudness(1.0, -100.0, 0.0, 0)
            if self.loudness.silent:
                self.builder.no_voice()
        self._read_frames(piece)
        if piece.blocks:
            audio = np.concatenate([b.samples for b in piece.blocks])
            self.builder.add_audio(audio, piece.blocks[0].start)
            self._keep_head(audio)
        if self.builder.has_voice:
            self._voice_features(final)
        if final:
            inputs = self.builder.finish(self.duration_s)
        else:
            inputs = self.builder.ready(piece.audio_n / AUDIO_RATE)
        self.windows_scorer.add(inputs)
        new = self.windows_scorer.take(final=final)
        self.windows += new
        if new and not final and self.on_windows is not None:  # final: cut where the recording (or a stop) ends
            self.on_windows(new)
        release_memory()

    def _voice_features(self, final: bool) -> None:
        """Voice features of the audio added since the last piece (to its end when ``final``), computed in blocks of
        at most :attr:`chunk_s` seconds, each with :data:`~crossemo_core.clip.sequences.VOICE_MARGIN_S` of context
        on both sides."""
        b, hop = self.builder, int(seq.VOICE_HOP_S * AUDIO_RATE)
        margin = int(seq.VOICE_MARGIN_S * AUDIO_RATE)
        total = b.audio_until
        target = 1 + total // hop if final else max(self._voice_done, (total - margin) // hop)
        block = max(1, int(self.chunk_s / seq.VOICE_HOP_S))
        while self._voice_done < target:
            new = min(target, self._voice_done + block)
            last = final and new == target
            lo = max(0, self._voice_done * hop - margin)
            hi = total if last else min(total, new * hop + margin)
            part = seq.voice_track_part(b.audio[lo - b.audio_first:hi - b.audio_first], self.loudness.gain,
                                        self.loudness.max_db, self.scorer.extractor)
            a, z = self._voice_done - lo // hop, new - lo // hop
            b.add_voice(part.frames(a, z), self._voice_done)
            self._speech_frames += int((part.active[a:z] & part.voiced[a:z]).sum())
            self._voice_done = new

    def _whole(self, piece: _Piece) -> None:
        """A recording that fits one piece: read it whole, exactly as :meth:`ClipScorer.judge` reads a clip."""
        self._read_frames(piece)
        audio = np.concatenate([b.samples for b in piece.blocks]) if piece.blocks else (
            np.zeros(0, np.float32) if self._any_audio else None)
        b = self.builder
        if audio is not None:
            b.add_audio(audio, 0)
            self._keep_head(audio)
        if audio is not None and len(audio) >= 0.1 * AUDIO_RATE and float(np.max(np.abs(audio))) >= SILENCE_PEAK:
            track = seq.voice_track(audio, AUDIO_RATE, self.scorer.extractor)
            b.add_voice(track, 0)
            self._speech_frames += int((track.active & track.voiced).sum())
        else:
            b.no_voice()
        if self._threaded_reads:  # the voice reader's per-window work beside the clip model's (the same readings)
            self.windows_scorer = self.scorer.window_scorer(self.cal, self.builder, threaded_reads=True)
        self.windows_scorer.add(b.finish(self.duration_s))
        recording = self._recording_audio()
        if recording is not None:  # the clip's voice reading, read here while the reading thread finishes its windows
            self.windows_scorer.recording_reading(recording)
        self.windows += self.windows_scorer.take(final=True)
        release_memory()

    def _keep_head(self, audio: np.ndarray) -> None:
        """Keep the audio while the recording may still be short enough for its voice to be read as one recording
        (:data:`~crossemo_core.clip.score.RECORDING_READ_S`; at most ~4 MB)."""
        limit = int(HEAD_HELD_S * AUDIO_RATE)
        if self._head_n <= limit:
            self._head.append(audio)
            self._head_n += len(audio)
        elif self._head:
            self._head = []

    @property
    def _any_audio(self) -> bool:
        stream = self.voice if self.voice is not None else self.main
        return bool(stream is not None and stream._any_audio)

    @property
    def duration_s(self) -> float:
        """The recording's length as judged: the voice's (aligned audio), else the video's."""
        if self._any_audio:
            return self._audio_n / AUDIO_RATE
        return self._video_t if self.main is None or self.main.is_image else max(self._video_t,
                                                                                 self.main._last_t)

    # -------------------------------------------------------------------------------------------- the end
    def _finish(self) -> "ClipVerdict":
        summaries = [self.main.finish()] + ([self.voice.finish()] if self.voice is not None else [])
        self._submit(final=True)
        notes = [n for m in summaries for n in m.notes]
        media = summaries[0]
        if self.voice is not None and not media.is_image and abs(media.duration_s - self.duration_s) > 1.0:
            notes.append(f"the video ({media.duration_s:.1f} s) and the voice ({self.duration_s:.1f} s) differ in "
                         f"length; they were aligned at their start and only {self.duration_s:.1f} s of voice was "
                         f"judged.")
        notes += self.facelog.notes(still=self._still is not None)
        self._report(self.duration_s)
        return self._verdict(notes, partial=None)

    def _verdict(self, notes: list[str], partial: str | None) -> "ClipVerdict":
        name = self.main.name if self.main is not None else str(self.source)
        duration = self.duration_s
        facts = ClipFacts(
            name=name, voice_name=self.voice.name if self.voice is not None else None, duration_s=duration,
            face_fraction=self.facelog.face_fraction(duration, self.fps), speech_s=self.speech_s,
            still=bool(self.main is not None and self.main.is_image), notes=notes,
            geometry=self.facelog.geometry_summary(), geometry_series=self.facelog.geometry_series(max_points=5000),
            thumbnails=self.thumbs.thumbnails(max([duration] + [w.end for w in self.windows[-1:]])),
            envelope=np.concatenate(self._env) if self._env else np.zeros(0, np.float32), partial=partial,
            face_seen_fraction=self.facelog.seen_fraction(duration, self.fps))
        return self.scorer.verdict(facts, self.windows, self.windows_scorer, self.cal, self._recording_audio())

    def _recording_audio(self) -> np.ndarray | None:
        """The recording's audio when it is short enough for the clip's voice to be read as one recording
        (:data:`~crossemo_core.clip.score.RECORDING_READ_S`), else None."""
        if self._head and self.duration_s <= RECORDING_READ_S + 1e-6 \
                and self._head_n <= HEAD_HELD_S * AUDIO_RATE:
            return np.concatenate(self._head)
        return None

    @property
    def speech_s(self) -> float:
        """Seconds of speech (energy-active and voiced frames) in the voice features computed."""
        return self._speech_frames * seq.VOICE_HOP_S

    def _partial_safely(self, how: str) -> "ClipVerdict | None":
        """The verdict of what was analysed before a stop or Ctrl-C: the data decoded so far, read and scored as a
        recording that ends there; when that fails (the interrupt landed mid-update), the windows already scored."""
        done = self.done_s
        total = self.total_s
        sentence = (f"the analysis was {how} at {_clock(done)}"
                    + (f" of {_clock(total)}" if total else "") + f"; this covers 0:00-{_clock(done)} only.")
        try:
            self._drain()
            self._video_done = self._audio_done = True
            if self._any_audio or self._frames or self._still is not None or self.streaming:
                self._submit(final=True)
            return self._verdict([sentence] + self.facelog.notes(still=self._still is not None), partial=sentence)
        except Exception:  # noqa: BLE001 - best effort: fall back to what was finished
            try:
                return self._verdict([sentence], partial=sentence) if self.windows else None
            except Exception:  # noqa: BLE001
                return None


def _single_threaded_blas() -> Any:
    """Limit numpy's BLAS and OpenMP pools to one thread until ``.restore_original_limits()`` (None without
    threadpoolctl). While the limit holds, the voice extractor's own per-call limit is skipped
    (:func:`_extractor_limit_skipped`)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return None
    return _HeldLimit(threadpool_limits(1))


class _HeldLimit:
    """The analysis's one-thread BLAS limit; while any analysis holds one, ``VoiceFeatureExtractor.extract`` does
    not set (and undo) the same limit again around every call. threadpoolctl finds the loaded libraries by reading
    ``/proc/self/maps`` each time, which with torch and mediapipe loaded costs ~5 ms: the voice reader extracts
    prosody features per 2 s window, and that lookup was ~2 s of CPU per 3 minutes of media (measured with
    benchmarks/bench_session.py's recording, 180 s: 11.4 -> 9.4 CPU s)."""

    _lock = threading.Lock()
    _held = 0
    _original: Any = None

    def __init__(self, limit: Any) -> None:
        from crossemo_core.features import voice

        self.limit, self._released = limit, False
        with _HeldLimit._lock:
            if _HeldLimit._held == 0:
                _HeldLimit._original = voice._single_threaded
                voice._single_threaded = contextlib.nullcontext
            _HeldLimit._held += 1

    def restore_original_limits(self) -> None:
        from crossemo_core.features import voice

        if self._released:
            return
        self._released = True
        with _HeldLimit._lock:
            _HeldLimit._held -= 1
            if _HeldLimit._held == 0:
                voice._single_threaded = _HeldLimit._original
        self.limit.restore_original_limits()


@dataclass
class _Held(FaceFrame):
    """A frame that was not sampled (half face rate), standing in for the tracked frame before it: its face, if it
    had one, counts again here with the same reading (no thumbnail, no geometry)."""


def _hold(readings: Any, frames: list[FaceFrame]) -> Any:
    """Readings of the tracked frames among ``frames``, spread over all of them (each held frame repeats the row of
    the tracked frame before it)."""
    from crossemo_core.clip.reading import FaceReadings

    rows: list[int] = []
    found: list[bool] = []
    row = -1
    for f in frames:
        if not isinstance(f, _Held) and f.crop is not None:
            row += 1
        has = f.crop is not None and row >= 0
        found.append(has)
        if has:
            rows.append(row)
    idx = np.array(rows, dtype=np.int64)
    return FaceReadings(np.array([f.t for f in frames]), np.array(found, dtype=bool), readings.logits[idx],
                        readings.emotions[idx])


def release_memory() -> None:
    """Give the memory freed by a piece's large temporary arrays back to the system (glibc's ``malloc_trim``; a
    no-op elsewhere). Without it the allocator keeps the freed blocks of each piece, fragmented, and the process
    grows by ~250 MB over the first pieces of a long recording (measured: peak 1.07 GB instead of 0.83 GB for 3 min)."""
    global _TRIM
    if _TRIM is None:
        try:
            import ctypes

            _TRIM = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _TRIM = False
    if _TRIM:
        _TRIM(0)


_TRIM = None


def _clock(seconds: float) -> str:
    from crossemo_core.clip.segments import fmt_clock

    return fmt_clock(seconds)
