"""Recording a clip in the browser: the camera and the microphone together, turned into one MP4 that the Clip verdict
page judges exactly like an upload.

Two layers:

- :class:`ClipRecorder` (no Streamlit): give it the video and audio frames as they arrive (``av.VideoFrame`` /
  ``av.AudioFrame``, what aiortc hands out), then :meth:`ClipRecorder.finish` returns the MP4's bytes (H.264 video,
  AAC audio, both on one time axis). The video is encoded as it comes, at most :data:`MAX_FPS` frames per second and
  :data:`MAX_SIDE` pixels on the longer side, into memory; the voice is kept as 16 kHz mono samples (64 kB a second)
  and encoded at the end. Nothing touches the disk.
- :func:`record_clip` (the page's widget): streamlit-webrtc's ``webrtc_streamer``, its frames handed to a
  :class:`LiveRecording` kept in the session: the camera's through a video frame callback (which returns a small
  copy as the live preview, so the person sees how they are framed), the microphone's through an audio sink (not
  sent back: no echo). It is configured with no STUN or TURN server (an empty ``iceServers`` list, in the browser
  and on the server), so it works on localhost with no outside server. When the user presses Stop, the recording
  becomes a :class:`~crossemo_core.clip.decode.NamedBytes` clip, kept in the session's memory until the next take.

The face and the voice are put on one time axis by when their first frames reached the server (wall clock), then
each by its own timestamps (the video's presentation times; the voice by its sample count, with a gap in its
timestamps kept as silence). The two first frames' delays (network, jitter buffers) can differ a little; this
alignment is not measured against a real camera here (the tests check it with synthetic frames), and the clip model
judges windows of 2 s.
"""
from __future__ import annotations

import io
import logging
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from crossemo_core.clip.decode import NamedBytes
from crossemo_core.errors import DataError

log = logging.getLogger(__name__)

AUDIO_RATE = 16000
"""The voice is kept (and written) as 16 kHz mono: the rate the clip path reads it at."""
MAX_FPS = 15.0
"""Video frames kept per second (the face is sampled at 10 per second or fewer by the clip model)."""
MAX_SIDE = 640
"""Longest side of the recorded video, in pixels (the clip path scales frames to at most this anyway)."""
PREVIEW_WIDTH = 320
"""Width of the live preview sent back to the browser (small: the server encodes it again for the trip back)."""
MAX_SECONDS = 600.0
"""Longest recording kept: frames after 10 minutes are dropped (and :attr:`ClipRecorder.truncated` says so)."""
GAP_S = 0.1
"""A jump in the audio timestamps longer than this is kept as silence (shorter jitter is ignored)."""
VIDEO_TIME_BASE = Fraction(1, 1000)
NOTHING_RECORDED = ("nothing was recorded: no picture or sound reached the server. Allow the browser to use the "
                    "camera and the microphone, press Start recording, speak for a few seconds, then press Stop.")


def _seconds(frame: Any) -> float | None:
    """A frame's presentation time in seconds, or None when it has none."""
    if frame.pts is None or frame.time_base is None:
        return None
    return float(frame.pts * frame.time_base)


class ClipRecorder:
    """Video and audio frames in, one MP4 (bytes) out. Thread-safe: the video and the audio may arrive on
    different threads, and :meth:`finish` may be called from a third; frames that come after it are ignored."""

    def __init__(self, *, max_fps: float = MAX_FPS, max_side: int = MAX_SIDE, max_seconds: float = MAX_SECONDS,
                 clock: Any = time.monotonic) -> None:
        self.max_fps, self.max_side, self.max_seconds = max_fps, max_side, max_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._t0: float | None = None  # wall-clock time of the first frame of either kind
        self._closed = False
        self.truncated = False
        # video
        self._buffer = io.BytesIO()
        self._container = None
        self._vstream = None
        self._size: tuple[int, int] | None = None
        self._v_first: tuple[float, float] | None = None  # (first frame's own time, its offset on the clip axis)
        self._v_last_pts = -1
        self._v_last_kept = -np.inf
        self.n_video = 0
        self._v_end = 0.0
        # audio
        self._resampler = None
        self._a_first: tuple[float, float] | None = None
        self._chunks: list[np.ndarray] = []
        self._n_samples = 0  # samples held, counted from the audio's own start
        self._a_offset = 0.0
        self.n_audio = 0

    # ------------------------------------------------------------------------------------------------ state
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def duration_s(self) -> float:
        """Seconds recorded so far (the longer of the picture and the sound)."""
        return max(self._v_end, self._a_offset + self._n_samples / AUDIO_RATE if self._a_first else 0.0)

    def _offset(self) -> float:
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        return now - self._t0

    # ------------------------------------------------------------------------------------------------ video
    def add_video(self, frame: Any) -> None:
        """One camera frame (``av.VideoFrame``; its ``pts``/``time_base`` are used when present)."""
        with self._lock:
            if self._closed:
                return
            own = _seconds(frame)
            if self._v_first is None:
                offset = self._offset()
                self._v_first = (own if own is not None else offset, offset)
            if own is None:
                t = self._offset()
            else:
                t = self._v_first[1] + own - self._v_first[0]
            if t > self.max_seconds:
                self.truncated = True
                return
            if t < self._v_last_kept + 1.0 / self.max_fps - 1e-3:
                return  # above the kept frame rate
            pts = int(round(t / VIDEO_TIME_BASE))
            if pts <= self._v_last_pts:
                return  # timestamps must grow
            self._encode(frame, pts)
            self._v_last_pts, self._v_last_kept = pts, t
            self._v_end = t + 1.0 / self.max_fps
            self.n_video += 1

    def _open(self, frame: Any) -> None:
        import av

        w, h = frame.width, frame.height
        scale = min(1.0, self.max_side / max(w, h))
        w, h = max(2, int(w * scale) // 2 * 2), max(2, int(h * scale) // 2 * 2)  # even sides for yuv420p
        self._size = (w, h)
        self._container = av.open(self._buffer, mode="w", format="mp4")
        self._vstream = self._container.add_stream("libx264", rate=int(self.max_fps))
        self._vstream.width, self._vstream.height, self._vstream.pix_fmt = w, h, "yuv420p"
        self._vstream.time_base = VIDEO_TIME_BASE
        self._vstream.codec_context.time_base = VIDEO_TIME_BASE
        self._vstream.options = {"preset": "veryfast", "crf": "23", "tune": "zerolatency"}
        self._astream = self._container.add_stream("aac", rate=AUDIO_RATE)
        self._astream.layout = "mono"

    def _encode(self, frame: Any, pts: int) -> None:
        if self._container is None:
            self._open(frame)
        w, h = self._size
        out = frame.reformat(width=w, height=h, format="yuv420p")
        out.pts, out.time_base = pts, VIDEO_TIME_BASE
        self._container.mux(self._vstream.encode(out))

    # ------------------------------------------------------------------------------------------------ audio
    def add_audio(self, frame: Any) -> None:
        """One microphone frame (``av.AudioFrame``, any format, layout and rate: resampled to 16 kHz mono)."""
        import av

        with self._lock:
            if self._closed:
                return
            own = _seconds(frame)
            if self._a_first is None:
                offset = self._offset()
                self._a_first = (own if own is not None else offset, offset)
                self._a_offset = offset
                self._resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
            if own is not None:  # a jump in the timestamps (packets never sent) is kept as silence
                expected = int(round((own - self._a_first[0]) * AUDIO_RATE))
                if expected - self._n_samples > GAP_S * AUDIO_RATE:
                    self._append(np.zeros(expected - self._n_samples, np.float32))
            for out in self._resampler.resample(frame):
                self._append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
            self.n_audio += 1

    def _append(self, samples: np.ndarray) -> None:
        room = int((self.max_seconds - self._a_offset) * AUDIO_RATE) - self._n_samples
        if room < len(samples):
            self.truncated = True
            samples = samples[:max(room, 0)]
        if len(samples):
            self._chunks.append(samples)
            self._n_samples += len(samples)

    # ------------------------------------------------------------------------------------------------ finish
    def finish(self, name: str = "recording.mp4") -> NamedBytes:
        """Close the recording and return it as an MP4 (``NamedBytes``). Raises ``DataError`` when nothing was
        recorded. A recording with sound but no picture is written as audio only (M4A), so the clip path names
        what is missing just as it does for an upload without a video track."""
        import av

        with self._lock:
            self._closed = True
            if self._container is None and not self._chunks:
                raise DataError(NOTHING_RECORDED)
            if self._container is None:  # sound only
                self._container = av.open(self._buffer, mode="w", format="mp4")
                self._astream = self._container.add_stream("aac", rate=AUDIO_RATE)
                self._astream.layout = "mono"
                name = name.rsplit(".", 1)[0] + ".m4a"
            else:
                self._container.mux(self._vstream.encode(None))
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.float32)
            self._chunks = []
            if self._a_first is not None:
                audio = np.concatenate([np.zeros(int(round(self._a_offset * AUDIO_RATE)), np.float32), audio])
            elif self._vstream is not None:  # no microphone: a silent track, so the file says "no speech"
                audio = np.zeros(int(round(self._v_end * AUDIO_RATE)), np.float32)
            if len(audio):
                block = av.AudioFrame.from_ndarray(np.clip(audio, -1.0, 1.0)[None, :], format="flt", layout="mono")
                block.sample_rate, block.pts, block.time_base = AUDIO_RATE, 0, Fraction(1, AUDIO_RATE)
                self._container.mux(self._astream.encode(block))
            self._container.mux(self._astream.encode(None))
            self._container.close()
            data = self._buffer.getvalue()
            self._buffer = io.BytesIO()
            return NamedBytes(name, data)


@dataclass
class Recorded:
    """One finished recording, kept in the session (memory only) until the next one replaces it."""

    clip: NamedBytes
    seconds: float
    truncated: bool


class LiveRecording:
    """The session's link between the WebRTC callbacks (aiortc's thread) and the page (the script's thread). The
    page calls :meth:`start` while the stream plays and :meth:`stop` once it has stopped; frames that arrive while
    no recording is started (a late frame after Stop) are dropped."""

    def __init__(self, clock: Any = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._current: ClipRecorder | None = None

    def start(self) -> None:
        """Begin a recording, unless one is already going."""
        with self._lock:
            if self._current is None:
                self._current = ClipRecorder(clock=self._clock)

    def on_video(self, frame: Any) -> Any:
        """Record a camera frame; returns a small copy of it, the live preview the browser shows."""
        rec = self._current
        if rec is not None:
            rec.add_video(frame)
        scale = min(1.0, PREVIEW_WIDTH / frame.width)
        return frame.reformat(width=max(2, int(frame.width * scale) // 2 * 2),
                              height=max(2, int(frame.height * scale) // 2 * 2))

    def on_audio(self, frame: Any) -> None:
        rec = self._current
        if rec is not None:
            rec.add_audio(frame)

    @property
    def recording(self) -> bool:
        return self._current is not None

    def stop(self) -> Recorded | None:
        """Finish the recording in progress (None when there is none). Raises ``DataError`` when it holds
        nothing."""
        with self._lock:
            rec, self._current = self._current, None
        if rec is None:
            return None
        seconds, truncated = rec.duration_s, rec.truncated
        return Recorded(rec.finish(time.strftime("recording-%Y%m%d-%H%M%S.mp4")), seconds, truncated)


# ---------------------------------------------------------------------------------------------------- the widget
RTC_CONFIGURATION = {"iceServers": []}
"""No STUN or TURN server: the browser and the server meet on the machine's own addresses (localhost), and nothing
is asked of any outside server."""
MEDIA = {"video": {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"ideal": 15}},
         "audio": {"echoCancellation": False, "noiseSuppression": False, "autoGainControl": True}}
"""The camera at about 640x480, 15 frames a second; the microphone without the browser's noise suppression (which
flattens the voice the clip model reads)."""
LABELS = {"start": "Start recording", "stop": "Stop", "select_device": "Camera / microphone"}


def record_clip(key: str) -> tuple[Recorded | None, str | None]:
    """The recorder on the page: Start, speak, Stop. Returns ``(recording, error)``: the last finished recording
    of this session (or None) and a one-line reason when the last attempt gave no clip. Kept in
    ``st.session_state[key + "_live"]`` / ``[key + "_done"]`` (memory only)."""
    import streamlit as st

    try:
        from streamlit_webrtc import AudioSinkTrack, WebRtcMode, webrtc_streamer
    except ImportError:
        return None, ("recording video needs streamlit-webrtc (pip install -r requirements.txt); meanwhile use "
                      "the photo + voice mode or upload a video.")
    live: LiveRecording = st.session_state.setdefault(key + "_live", LiveRecording())
    try:
        ctx = webrtc_streamer(key=key, mode=WebRtcMode.SENDRECV, rtc_configuration=RTC_CONFIGURATION,
                              media_stream_constraints=MEDIA, video_frame_callback=live.on_video,
                              sink_audio_track=AudioSinkTrack(live.on_audio), sendback_audio=False,
                              translations=LABELS, media_toggle_controls=False,
                              video_html_attrs={"autoPlay": True, "controls": False, "muted": True,
                                                "style": {"width": "100%", "maxWidth": f"{PREVIEW_WIDTH}px"}})
    except Exception as exc:  # noqa: BLE001 - Streamlit's rerun/stop are BaseExceptions and pass through
        log.exception("the video recorder failed")
        return None, (f"the video recorder could not start ({type(exc).__name__}: {str(exc)[:120]}); use the "
                      f"photo + voice mode or upload a video.")
    if ctx.state.playing or ctx.state.signalling:
        if not live.recording:
            st.session_state.pop(key + "_done", None)  # a new take replaces the last one
            st.session_state.pop(key + "_error", None)
        live.start()
    elif live.recording:
        try:
            st.session_state[key + "_done"] = live.stop()
        except DataError as exc:
            st.session_state[key + "_error"] = str(exc)
    return st.session_state.get(key + "_done"), st.session_state.get(key + "_error")
