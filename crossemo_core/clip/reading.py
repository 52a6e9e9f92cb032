"""Read: decoded media -> what each side shows, frame by frame (the second step of the clip path).

- **Face**: the face tracker's :class:`~crossemo_core.clip.face.FaceFrame` of each sampled frame (crop, thumbnail,
  geometry) -> :class:`FaceReadings`: per frame its time and whether a face was found, and for each frame with a face
  the clip model's expression logits (its face input) and the face reader's 7 emotion probabilities. Crops are read
  in groups and then dropped; :class:`FaceLog` keeps what a report needs of a whole recording (face found, face
  count, geometry per frame: a few bytes each) and :class:`ThumbPicker` a thumbnail about every second (sparser on
  long recordings).
- **Voice**: the clip model's voice input needs two numbers that depend on the whole recording, the loudness gain
  and the loudest frame after it (:class:`Loudness`, from :func:`scan_loudness`, two passes over the audio alone);
  with them :func:`~crossemo_core.clip.sequences.voice_track_part` gives any stretch's features exactly as a
  whole-file pass would.

:class:`ClipAnalysis` is everything read from a short clip held whole in memory (the baseline clip, the training
scripts); long recordings are read in pieces by :mod:`crossemo_core.clip.session`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.decode import AUDIO_RATE, AudioBlock
from crossemo_core.clip.face import GEOMETRY_NAMES, FaceFrame, FaceTrack
from crossemo_core.features.voice import SILENCE_PEAK


# ------------------------------------------------------------------------------------------------ face
@dataclass
class FaceReadings:
    """Sampled frames in time order: ``times`` ``(T,)``, ``found`` ``(T,)``; for the frames with a face, in order,
    ``logits`` ``(n, 7)`` (the clip model's expression network) and ``emotions`` ``(n, 7)`` (the face reader)."""

    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    found: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    logits: np.ndarray = field(default_factory=lambda: np.zeros((0, 7), np.float32))
    emotions: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))

    def __len__(self) -> int:
        return len(self.times)

    def extend(self, other: "FaceReadings") -> "FaceReadings":
        return FaceReadings(np.concatenate([self.times, other.times]), np.concatenate([self.found, other.found]),
                            np.concatenate([self.logits, other.logits]).astype(other.logits.dtype),
                            np.concatenate([self.emotions, other.emotions]))

    def since(self, t: float) -> "FaceReadings":
        """The frames at ``t`` or later (within 1 us)."""
        keep = int(np.searchsorted(self.times, t - 1e-6, side="left"))
        rows = int(self.found[:keep].sum())
        return FaceReadings(self.times[keep:], self.found[keep:], self.logits[rows:], self.emotions[rows:])

    def window_emotions(self, start: float, end: float) -> np.ndarray:
        """``(k, 7)`` face reader emotions of the frames with a face in ``[start, end)``."""
        rows = np.cumsum(self.found) - 1
        inside = (self.times >= start - 1e-6) & (self.times < end - 1e-6) & self.found
        return self.emotions[rows[inside]]


def read_faces(frames: Sequence[FaceFrame], expression, face_reader) -> FaceReadings:  # noqa: ANN001
    """Read the crops of ``frames`` with the clip model's expression network and the face reader (network-only
    stacker): one call each for all crops."""
    track = FaceTrack(list(frames))
    crops = track.crops()
    logits = expression.logits(crops)
    emotions = face_reader.read_crops(crops, use_blendshapes=False, scales=track.scales()).emotions \
        if len(crops) else np.zeros((0, 7))
    return FaceReadings(track.times, track.found, logits, emotions)


def read_still(frame: FaceFrame, n: int, fps: float, expression, face_reader,  # noqa: ANN001
               first: int = 0) -> FaceReadings:
    """``n`` frames (from frame ``first``, at ``fps``) of one photo: its one crop read once and repeated."""
    times = (first + np.arange(n)) / fps
    if frame.crop is None:
        return FaceReadings(times, np.zeros(n, bool))
    logits = np.repeat(expression.logits(frame.crop[None]), n, axis=0)
    scale = FaceTrack([frame]).scales()
    emotions = np.repeat(face_reader.read_crops(frame.crop[None], use_blendshapes=False, scales=scale).emotions, n,
                         axis=0)
    return FaceReadings(times, np.ones(n, bool), logits, emotions)


class FaceLog:
    """What is kept of every sampled frame of a whole recording: time, whether a face was found (read: a crop from
    its mesh's landmarks or the detectors' eye and mouth points), whether the detectors saw one, how many faces, and
    the geometry of the face (8 numbers, from the mesh); no pixels."""

    def __init__(self) -> None:
        self._t: list[float] = []
        self._found: list[bool] = []
        self._seen: list[bool] = []
        self.max_faces = 0
        self.aligned_on_points = 0  # frames whose face was read from a crop aligned on the detectors' points
        self._geometry_t: list[float] = []
        self._geometry: list[np.ndarray] = []

    def add(self, frames: Iterable[FaceFrame]) -> None:
        for f in frames:
            self._t.append(f.t)
            self._found.append(f.crop is not None)
            self._seen.append(f.crop is not None or f.n_faces > 0)
            self.max_faces = max(self.max_faces, f.n_faces)
            self.aligned_on_points += f.crop is not None and not f.from_mesh
            if f.geometry is not None:
                self._geometry_t.append(f.t)
                self._geometry.append(f.geometry)

    @property
    def times(self) -> np.ndarray:
        return np.array(self._t, dtype=np.float64)

    @property
    def found(self) -> np.ndarray:
        return np.array(self._found, dtype=bool)

    def notes(self, still: bool = False) -> list[str]:
        """What the verdict's notes say about the faces: several in a frame; faces the mesh did not find
        (``still``: the frames are one photo, repeated)."""
        notes = []
        if self.max_faces > 1:
            notes.append(f"several faces were seen (up to {self.max_faces} in one "
                         f"{'photo' if still else 'frame'}); the largest face was analysed"
                         f"{'' if still else ' in each frame'}.")
        how = ("a coarser alignment, and give no face measurements." if not still else
               "a coarser alignment, with no face measurements.")
        if self.aligned_on_points and still:
            notes.append(f"the face mesh found no landmarks in the photo (glasses, a turned head): the face was framed "
                         f"on the face detectors' eye and mouth points, {how}")
        elif self.aligned_on_points:
            notes.append(f"in {self.aligned_on_points} of {sum(self._found)} frames with a face the face mesh found no "
                         f"landmarks (glasses, compression, a turned head): those faces were framed on the face "
                         f"detectors' eye and mouth points, {how}")
        return notes

    def face_fraction(self, duration_s: float, fps: float) -> float:
        return face_fraction(self.times, self.found, duration_s, fps)

    def seen_fraction(self, duration_s: float, fps: float) -> float:
        """As :meth:`face_fraction`, counting the frames where the detectors saw a face, read or not."""
        return face_fraction(self.times, np.array(self._seen, dtype=bool), duration_s, fps)

    def geometry(self) -> np.ndarray:
        return np.stack(self._geometry) if self._geometry else np.zeros((0, len(GEOMETRY_NAMES)), np.float32)

    def geometry_summary(self) -> dict[str, dict[str, float]]:
        return geometry_summary(self.geometry())

    def geometry_series(self, max_points: int | None = None) -> dict[str, np.ndarray]:
        """Geometry over time (``max_points``: every k-th frame so that at most that many remain)."""
        if not self._geometry:
            return {}
        t, g = np.array(self._geometry_t), np.stack(self._geometry)
        if max_points and len(t) > max_points:
            step = int(np.ceil(len(t) / max_points))
            t, g = t[::step], g[::step]
        return {"t": t, **{n: g[:, i] for i, n in enumerate(GEOMETRY_NAMES)}}


def face_fraction(times: np.ndarray, found: np.ndarray, duration_s: float, fps: float) -> float:
    """Share of the clip's time covered by frames with a face: frames with a face (within the analysed span)
    against the frames the sampling rate gives for that span, so a video holding one frame beside 6 s of voice
    covers 1/30 of it, not 100 %."""
    if len(times) == 0:
        return 0.0
    inside = times < duration_s + 1e-6 if duration_s > 0 else np.ones(len(times), bool)
    expected = max(int(inside.sum()), int(np.floor(duration_s * fps + 1e-6)), 1)
    return float(min(1.0, found[inside].sum() / expected)) if inside.any() else 0.0


def geometry_summary(g: np.ndarray) -> dict[str, dict[str, float]]:
    if len(g) == 0:
        return {}
    return {n: {"median": _r(float(np.median(g[:, i]))), "p10": _r(float(np.percentile(g[:, i], 10))),
                "p90": _r(float(np.percentile(g[:, i], 90)))} for i, n in enumerate(GEOMETRY_NAMES)}


def _r(x: float) -> float | None:
    return None if not np.isfinite(x) else round(float(x), 3)


class ThumbPicker:
    """A face thumbnail about every ``every_s`` seconds, picked as frames arrive. For each mark ``k * every_s``: the
    frame with a face nearest to it (the earlier one on a tie), kept if it lies within half a step and did not
    already stand for the mark before. Past ``max_thumbs`` the step doubles and every other thumbnail is dropped,
    so a long recording keeps at most ``max_thumbs`` (a 2-hour session one about every 20 s), not one a second."""

    def __init__(self, every_s: float = 1.0, max_thumbs: int = 400) -> None:
        self.every_s, self.max_thumbs = every_s, max_thumbs
        self._open: dict[int, tuple[float, float, np.ndarray]] = {}  # mark -> (distance, t, thumb)
        self._kept: list[tuple[int, float, np.ndarray]] = []  # (mark, t, thumb)

    def add(self, t: float, thumb: np.ndarray | None) -> None:
        if thumb is None:
            return
        while True:  # close the marks no later frame can be nearer to (a close may double the step)
            done = [m for m in self._open if m * self.every_s + self.every_s / 2 < t]
            if not done:
                break
            self._close(min(done))
        half = self.every_s / 2
        below = int(np.floor(t / self.every_s))
        for mark in (below, below + 1):
            d = abs(t - mark * self.every_s)
            if mark >= 0 and d <= half and (mark not in self._open or d < self._open[mark][0]):
                self._open[mark] = (d, t, thumb)

    def _close(self, mark: int) -> None:
        _, t, thumb = self._open.pop(mark)
        if self._kept and self._kept[-1][1] == t:
            return  # the same frame already stands for the mark before
        self._kept.append((mark, t, thumb))
        if len(self._kept) > self.max_thumbs:
            self.every_s *= 2
            self._kept = [(m // 2, t, th) for m, t, th in self._kept if m % 2 == 0]
            self._open = {m // 2: v for m, v in self._open.items() if m % 2 == 0}

    def thumbnails(self, end_s: float | None = None) -> list[tuple[float, np.ndarray]]:
        """``(time, thumb)`` in time order, marks beyond ``end_s`` left out (closes the open marks)."""
        while self._open:
            self._close(min(self._open))
        return [(t, th) for m, t, th in self._kept if end_s is None or m * self.every_s <= end_s + 1e-6]


# ------------------------------------------------------------------------------------------------ voice
@dataclass(frozen=True)
class Loudness:
    """What the voice features of a stretch need from the whole recording: the loudness normalisation's ``gain``,
    the loudest frame's level after it (``max_db``, extractor framing), the raw signal's ``peak`` and its length."""

    gain: float
    max_db: float
    peak: float
    samples: int

    @property
    def silent(self) -> bool:
        """Too short or too quiet to read a voice from (the rule of a whole-file pass)."""
        return self.samples < 0.1 * AUDIO_RATE or self.peak < SILENCE_PEAK


def scan_loudness(open_audio: Callable[[], Iterable[AudioBlock]]) -> Loudness:
    """Two passes over a recording's audio (``open_audio()`` gives its blocks from the start each time): the first
    for the loudness gain (:func:`~crossemo_core.clip.sequences.normalise_loudness`'s 25 ms frames), the second for
    the loudest frame after the gain, framed as the voice extractor frames it. The same numbers as a whole-file
    pass, computed the same way, in memory that does not grow with the recording (the audio is decoded twice more:
    about 0.4 s per 10 minutes)."""
    frame = int(seq.LOUDNESS_FRAME_S * AUDIO_RATE)
    rms: list[np.ndarray] = []
    carry = np.zeros(0, np.float32)
    peak, samples = 0.0, 0
    for block in _grouped(open_audio()):
        x = block.samples
        samples = block.end
        if len(x):
            peak = max(peak, float(np.max(np.abs(x))))
        carry = np.concatenate([carry, x])
        n = len(carry) // frame
        if n:
            rms.append(seq.frame_rms(carry[: n * frame], frame))
            carry = carry[n * frame:]
    all_rms = np.concatenate(rms) if rms else np.zeros(0)
    gain = seq.loudness_gain(all_rms) if len(all_rms) else 1.0
    return Loudness(gain=float(gain), max_db=_loudest_db(_grouped(open_audio()), gain, samples), peak=peak,
                    samples=samples)


def _grouped(blocks: Iterable[AudioBlock], samples: int = 10 * AUDIO_RATE) -> Iterator[AudioBlock]:
    """Consecutive blocks joined into blocks of at least ``samples`` (the per-block work is then not dominated by
    the decoder's 64 ms frames)."""
    parts: list[AudioBlock] = []
    n = 0
    for block in blocks:
        parts.append(block)
        n += len(block.samples)
        if n >= samples:
            yield AudioBlock(parts[0].start, np.concatenate([p.samples for p in parts]))
            parts, n = [], 0
    if parts:
        yield AudioBlock(parts[0].start, np.concatenate([p.samples for p in parts]))


def _loudest_db(blocks: Iterable[AudioBlock], gain: float, samples: int) -> float:
    """max over the extractor's frames (25 ms every 10 ms, centred, zero-padded at both ends) of ``rms_db`` of the
    gain-normalised signal, computed as :class:`~crossemo_core.features.voice.VoiceFeatureExtractor` computes it."""
    import librosa

    from crossemo_core.features.voice import _DB_FLOOR

    win, hop = 400, 160
    n_total = 1 + samples // hop
    buf, done, best = np.zeros(win // 2, np.float32), 0, -np.inf  # buf starts at padded index hop * done

    def frames_of(b: np.ndarray, m: int) -> float:
        f = librosa.util.frame(b, frame_length=win, hop_length=hop)[:, :m]
        r = np.sqrt(np.mean(f ** 2, axis=0))
        return float(np.max(np.maximum(20 * np.log10(np.maximum(r, 1e-12)), _DB_FLOOR)))

    for block in blocks:
        buf = np.concatenate([buf, seq.apply_gain(block.samples, gain)])
        m = min((len(buf) - win) // hop + 1 if len(buf) >= win else 0, n_total - done)
        if m > 0:
            best = max(best, frames_of(buf, m))
            done += m
            buf = buf[hop * m:]
    m = n_total - done
    if m > 0:
        buf = np.concatenate([buf, np.zeros(win // 2, np.float32)])
        if len(buf) < win + hop * (m - 1):
            buf = np.concatenate([buf, np.zeros(win + hop * (m - 1) - len(buf), np.float32)])
        best = max(best, frames_of(buf, m))
    return best


# ------------------------------------------------------------------------------------------------ a whole clip
@dataclass
class ClipAnalysis:
    """Everything read from a clip held whole in memory, before the model judges it."""

    name: str
    voice_name: str | None
    duration_s: float
    track: FaceTrack
    face_logits: np.ndarray  # (n_found, 7)
    voice: seq.VoiceTrack | None
    envelope: np.ndarray  # (k,) peak |amplitude| per 10 ms, for the waveform plot
    still: bool
    notes: list[str] = field(default_factory=list)
    face_emotions: np.ndarray = field(default_factory=lambda: np.zeros((0, 7)))  # (n_found, 7) face reader
    audio: np.ndarray | None = None  # 16 kHz mono, for the voice reader
    fps: float = seq.FACE_FPS
    sha256: str | None = None  # of the recording's bytes, and of the separate voice recording
    voice_sha256: str | None = None

    @property
    def face_fraction(self) -> float:
        """See :func:`face_fraction`."""
        if not self.track.frames:
            return 0.0
        return face_fraction(self.track.times, self.track.found, self.duration_s, self.fps)

    @property
    def speech_s(self) -> float:
        return 0.0 if self.voice is None else self.voice.speech_s

    def face_rows(self) -> np.ndarray:
        return self.face_logits

    def voice_rows(self, windows: list[tuple[float, float]] | None = None) -> list[np.ndarray]:
        if self.voice is None:
            return []
        out = [seq.voice_window(self.voice, a, b) for a, b in (windows or seq.window_starts(self.duration_s))]
        return [v for v in out if v is not None]

    def face_readings(self) -> FaceReadings:
        return FaceReadings(self.track.times, self.track.found, self.face_logits, self.face_emotions)


def envelope(audio: np.ndarray) -> np.ndarray:
    """Peak ``|amplitude|`` per 10 ms (the waveform plot)."""
    k = AUDIO_RATE // 100
    m = len(audio) // k
    return np.abs(audio[: m * k]).reshape(m, k).max(1).astype(np.float32) if m else np.zeros(0, np.float32)


@dataclass
class ClipFacts:
    """What the verdict needs of a clip besides its windows (made by the streaming analysis or from a
    :class:`~crossemo_core.clip.reading.ClipAnalysis`)."""

    name: str
    voice_name: str | None
    duration_s: float
    face_fraction: float
    speech_s: float
    still: bool
    notes: list[str]
    geometry: dict[str, dict[str, float]]
    geometry_series: dict[str, np.ndarray]
    thumbnails: list[tuple[float, np.ndarray]]
    envelope: np.ndarray
    partial: str | None = None
    face_seen_fraction: float | None = None
    """As ``face_fraction``, counting frames where a face was seen but could not be read (sunglasses, a hand);
    None: not known, taken as ``face_fraction``."""
