"""Window: per-frame readings -> the inputs of each 2 s window (the third step of the clip path).

Windows are :data:`~crossemo_core.clip.sequences.WINDOW_S` long every :data:`~crossemo_core.clip.sequences.HOP_S`
(:func:`~crossemo_core.clip.sequences.window_starts`). :class:`WindowBuilder` holds what a recording read in pieces
still needs (the last seconds of face readings, voice features and audio) and hands out a window's
:class:`WindowInput` as soon as everything it covers has been read; the first window to cover the end of the
recording comes at :meth:`WindowBuilder.finish`. Window boundaries therefore never depend on where the pieces were
cut, and what is older than the next window is dropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crossemo_core.clip import sequences as seq
from crossemo_core.clip.decode import AUDIO_RATE
from crossemo_core.clip.reading import FaceReadings


@dataclass
class WindowInput:
    """What the scorer needs of one window ``[start, end)``: the model's face sequence (``(n, 7)`` logits of the
    frames with a face, or None when a face covers less than half of the window) and voice sequence (or None
    without speech); for a window with both, the face reader's emotions of its frames and its audio."""

    start: float
    end: float
    face: np.ndarray | None
    voice: np.ndarray | None
    face_emotions: np.ndarray | None = None
    audio: np.ndarray | None = None
    jitter: list[tuple[float, np.ndarray, np.ndarray]] | None = None
    """For a window with both: ``(weight, face, voice)`` of the window read at each offset of
    :data:`~crossemo_core.clip.sequences.JITTER_S` that stays inside the recording and has both (the nominal place
    included), for the clip model's ensemble."""
    voice_frames: np.ndarray | None = None
    """For a window with both: the voice extractor's frames of :attr:`audio` as the voice reader's prosody statistics
    read them (:meth:`~crossemo_core.clip.sequences.VoiceTrack.raw_frames`), cut from the recording's features
    instead of computed again for each of the overlapping windows; None where they cannot be cut (a window off the
    10 ms grid, or one whose audio the loudness gain clipped): the reader then computes them from the audio."""


class WindowBuilder:
    """Face readings, voice features and audio of a recording, added in time order in pieces of any length ->
    :class:`WindowInput` of each window, in order.

    ``add_faces(readings, until)``: frames read, and the time up to which every frame has been read (``inf`` when
    the video has ended). ``add_voice(track, first)``: voice features of frames ``first ..``, consecutive with the
    previous ones. ``add_audio(samples, first)``: raw audio from sample ``first``. ``no_voice()``: the recording has
    no usable voice (silent or too short): every window is then without speech. ``hold_voice_s``: the voice features
    of a recording's first seconds are held until the windows pass this time (a short recording's voice reading,
    :meth:`raw_frames`, reads them at the end), then dropped with the rest as the windows move on."""

    def __init__(self, fps: float = seq.FACE_FPS, hold_voice_s: float = 0.0) -> None:
        self.fps = fps
        self.hold_voice_s = hold_voice_s
        self.faces = FaceReadings()
        self.face_until = 0.0
        self.voice: seq.VoiceTrack | None = None
        self.voice_first = 0
        self.has_voice = True
        self.audio = np.zeros(0, np.float32)
        self.audio_first = 0
        self.produced = 0  # regular windows handed out (window k starts at k * HOP_S)

    # -------------------------------------------------------------------------------------------- data in
    def add_faces(self, readings: FaceReadings, until: float) -> None:
        self.faces = self.faces.extend(readings) if len(self.faces) else readings
        self.face_until = max(self.face_until, until)

    def add_voice(self, track: seq.VoiceTrack, first: int) -> None:
        if self.voice is None or len(self.voice.features) == 0:
            self.voice, self.voice_first = track, first
            return
        if first != self.voice_first + len(self.voice.features):
            raise ValueError(f"voice frames {first}.. do not follow frames {self.voice_first}.."
                             f"{self.voice_first + len(self.voice.features)}")
        self.voice = self.voice.then(track)

    def no_voice(self) -> None:
        self.has_voice, self.voice = False, None

    def add_audio(self, samples: np.ndarray, first: int) -> None:
        if len(self.audio) == 0:
            self.audio, self.audio_first = samples, first
        else:
            if first != self.audio_first + len(self.audio):
                raise ValueError("audio blocks must follow each other")
            self.audio = np.concatenate([self.audio, samples])

    @property
    def audio_until(self) -> int:
        return self.audio_first + len(self.audio)

    @property
    def voice_until(self) -> int:
        return self.voice_first + (0 if self.voice is None else len(self.voice.features))

    @property
    def next_start(self) -> float:
        return self.produced * seq.HOP_S

    # -------------------------------------------------------------------------------------------- windows out
    def ready(self, audio_s: float) -> list[WindowInput]:
        """The regular windows that certainly exist (the recording lasts at least ``audio_s``, the audio read so
        far) and whose face, voice and audio have all been added."""
        out = []
        while True:
            start = self.produced * seq.HOP_S
            end = start + seq.WINDOW_S
            if not (audio_s > seq.WINDOW_S + 1e-6 and start < audio_s - seq.WINDOW_S + 1e-6):
                break
            # every offset of the ensemble must be inside the recording and read (JITTER_S)
            reach = end + max(seq.JITTER_S)
            if audio_s < reach - 1e-6:
                break
            if self.face_until < reach - 1e-6 or int(reach * AUDIO_RATE) > self.audio_until:
                break
            if self.has_voice and int(round(reach / seq.VOICE_HOP_S)) > self.voice_until:
                break
            out.append(self._input(start, end, audio_s))
            self.produced += 1
        self._drop_old()
        return out

    def finish(self, duration_s: float) -> list[WindowInput]:
        """Every window not handed out yet, up to the end (``duration_s``), the last one ending there."""
        windows = seq.window_starts(duration_s) if duration_s > 0 else []
        out = [self._input(a, b, duration_s) for a, b in windows[self.produced:]]
        self.produced = len(windows)
        return out

    def _sequences(self, start: float, end: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        f = self.faces
        face = seq.face_window(f.times, f.found, f.logits, start, end, self.fps) if len(f.times) else None
        voice = (seq.voice_window(self.voice, start, end, first=self.voice_first)
                 if self.has_voice and self.voice is not None else None)
        return face, voice

    def _input(self, start: float, end: float, until: float) -> WindowInput:
        """The window ``[start, end)`` of a recording known to last at least ``until`` seconds."""
        face, voice = self._sequences(start, end)
        if face is None or voice is None:
            return WindowInput(start, end, face, voice)
        jitter = []
        for d, weight in zip(seq.JITTER_S, seq.JITTER_WEIGHTS):
            if d == 0:
                jitter.append((weight, face, voice))
            elif start + d >= -1e-6 and end + d <= until + 1e-6:
                f, v = self._sequences(start + d, end + d)
                if f is not None and v is not None:
                    jitter.append((weight, f, v))
        a, b = int(start * AUDIO_RATE) - self.audio_first, int(end * AUDIO_RATE) - self.audio_first
        audio = self.audio[max(a, 0):max(b, 0)]
        return WindowInput(start, end, face, voice, self.faces.window_emotions(start, end), audio, jitter,
                           self.raw_frames(self.audio_first + max(a, 0), audio))

    def raw_frames(self, first_sample: int, audio: np.ndarray) -> np.ndarray | None:
        """The voice extractor frames of ``audio``, the recording's samples from ``first_sample`` on, cut from the
        voice track (:meth:`~crossemo_core.clip.sequences.VoiceTrack.raw_frames`; a window's
        :attr:`WindowInput.voice_frames`); None where the track does not hold them (not added yet, or dropped as the
        windows moved on), ``first_sample`` is off the frame grid or the gain clipped the stretch."""
        hop = int(round(seq.VOICE_HOP_S * AUDIO_RATE))
        track = self.voice
        if track is None or first_sample % hop or len(audio) == 0 or np.abs(audio).max() * track.gain >= 1.0:
            return None
        return track.raw_frames(first_sample // hop - self.voice_first, audio)

    def _drop_old(self) -> None:
        """Keep what the next regular window, or a last window ending the recording soon, may need."""
        keep = max(0.0, self.next_start - seq.HOP_S + min(0.0, min(seq.JITTER_S)))  # the ensemble reads earlier
        if self.has_voice:  # the audio the next voice features need (a resumed analysis windows ahead of them)
            keep = max(0.0, min(keep, self.voice_until * seq.VOICE_HOP_S - seq.VOICE_MARGIN_S - 1.0))
        if len(self.faces) and self.faces.times[0] < keep - 1e-3:
            self.faces = self.faces.since(keep)
        cut = min(int(keep * AUDIO_RATE) - self.audio_first, len(self.audio))  # a resumed analysis starts late
        if cut > AUDIO_RATE * 5:  # in pieces of a few seconds: no copy per window
            self.audio, self.audio_first = self.audio[cut:].copy(), self.audio_first + cut
        voice_keep = keep if keep > self.hold_voice_s else 0.0
        frames = int(round(voice_keep / seq.VOICE_HOP_S)) - self.voice_first
        if self.voice is not None:  # contiguous: never past the frames held
            frames = min(frames, len(self.voice.features))
        if self.voice is not None and frames > 500:
            self.voice = self.voice.frames(frames, len(self.voice.features))
            self.voice_first += frames
