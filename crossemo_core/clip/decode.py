"""Reading a clip: video files, audio files and still images, from a path or from bytes (an upload).

Media are decoded with PyAV (which ships its own ffmpeg) or Pillow (still images); nothing is written to disk. A file
given by path is read from disk in pieces as ffmpeg asks for them (never whole); an upload is read from its bytes. The
format is recognised from the file's first bytes, not from its name: a file whose extension says one thing and
whose content another is read by its content, with a note saying so.

Two ways in, one decoder:

- :func:`open_media` -> :class:`MediaStream`: iterate it to get the decoded media in time order, as
  :class:`VideoSample` (one sampled frame, RGB) and :class:`AudioBlock` (16 kHz mono float32 samples, aligned to the
  video's start) events, then :meth:`MediaStream.finish` gives the :class:`DecodedMedia` summary (length, notes).
  Nothing is kept: a long recording is decoded in bounded memory (the clip path's streaming analysis,
  :mod:`crossemo_core.clip.session`).
- :func:`decode_media`: the same stream, with sampled frames handed to a callback and the audio returned whole (for
  short clips, baselines and the readers' command).

Video frames are sampled at ``fps`` (RGB, scaled so the longer side is at most ``limits.max_frame_side``).

Limits (:class:`ClipLimits`) are checked before decoding where possible (file size, declared duration) and during
decoding otherwise; an input above a limit is refused with a message naming the limit and how to change it.
"""
from __future__ import annotations

import functools
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Union

import numpy as np

from crossemo_core.errors import DataError
from crossemo_core.features.voice import MIN_AUDIO_RATE, DcBlocker, too_slow_for_speech
from crossemo_core.paths import NamedBytes  # noqa: F401 - re-exported: the clip path's in-memory file
from crossemo_core.settings import positive_number

AUDIO_RATE = 16000

VIDEO_EXTENSIONS = ("mp4", "mov", "m4v", "webm", "mkv", "avi", "flv", "3gp", "3g2", "wmv", "asf", "mpg", "mpeg", "ogv",
                    "mts", "m2ts", "ts")
AUDIO_EXTENSIONS = ("wav", "flac", "mp3", "ogg", "oga", "opus", "m4a", "aac", "amr", "wma")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "bmp", "webp")
SUPPORTED = VIDEO_EXTENSIONS + AUDIO_EXTENSIONS + IMAGE_EXTENSIONS
"""The usual extensions of what crossemo reads. Only messages use them: a file is read by its content, so any
container and codec that PyAV's ffmpeg decodes is accepted whatever its name."""

_EXT_FORMAT = {"mp4": "mp4", "mov": "mp4", "m4v": "mp4", "m4a": "mp4", "webm": "matroska", "mkv": "matroska",
               "avi": "avi", "wav": "wav", "flac": "flac", "mp3": "mp3", "ogg": "ogg", "oga": "ogg", "opus": "ogg",
               "jpg": "jpeg", "jpeg": "jpeg", "png": "png", "bmp": "bmp", "webp": "webp", "flv": "flv", "3gp": "mp4",
               "3g2": "mp4", "wmv": "asf", "wma": "asf", "asf": "asf", "mpg": "mpeg", "mpeg": "mpeg", "ogv": "ogg",
               "mts": "mpegts", "m2ts": "mpegts", "ts": "mpegts", "aac": "aac", "amr": "amr"}
FORMAT_LABEL = {"mp4": "MP4/QuickTime", "matroska": "Matroska/WebM", "avi": "AVI", "wav": "WAV audio",
                "flac": "FLAC audio", "mp3": "MP3 audio", "ogg": "Ogg", "jpeg": "JPEG image", "png": "PNG image",
                "bmp": "BMP image", "webp": "WebP image", "gif": "GIF image", "tiff": "TIFF image"}
IMAGE_FORMATS = ("jpeg", "png", "bmp", "webp")

NO_VIDEO = ("{name} has no video track, so there is no face to read. Give a video of the face, or a photo of it "
            "with this recording as the voice (score PHOTO --voice {name}).")
NO_AUDIO = ("{name} has no audio track, so there is no voice to read. Give the voice as a separate recording "
            "(score {name} --voice VOICE_FILE).")
NO_AUDIO_IMAGE = ("{name} is a still image, so it has no voice. Give the voice as a separate recording "
                  "(score {name} --voice VOICE_FILE).")

Source = Union[str, os.PathLike, bytes, "NamedBytes"]
FrameCallback = Callable[[float, np.ndarray], None]




def source_sha256(source: Source) -> str:
    """Hex sha256 of a source's bytes: what a verdict names as the file it belongs to (a path is read in pieces)."""
    import hashlib

    if isinstance(source, NamedBytes):
        return hashlib.sha256(source.data).hexdigest()
    if isinstance(source, (bytes, bytearray)):
        return hashlib.sha256(source).hexdigest()
    from crossemo_core.features.voice import file_sha256

    return file_sha256(source)


DEFAULT_MAX_MB = 10_000
"""Largest file accepted by default (megabytes). Files given by path are read in pieces, so this cap does not bound
memory (an upload's bytes are already in memory); it only refuses what cannot be a recording of a session."""
DEFAULT_MAX_SECONDS = 7200
"""Longest recording accepted by default: a 2-hour session (analysed in bounded memory, :mod:`.session`)."""


@dataclass(frozen=True)
class ClipLimits:
    """Caps on what a clip may be. ``CROSSEMO_CLIP_MAX_MB`` / ``CROSSEMO_CLIP_MAX_SECONDS`` change the defaults."""

    max_bytes: int = field(default_factory=lambda: int(positive_number("CROSSEMO_CLIP_MAX_MB", DEFAULT_MAX_MB)
                                                       * 1e6))
    max_duration_s: float = field(default_factory=lambda: positive_number("CROSSEMO_CLIP_MAX_SECONDS",
                                                                          DEFAULT_MAX_SECONDS))
    max_image_pixels: int = 50_000_000
    max_frame_side: int = 640
    max_image_side: int = 960
    fps: float = 10.0  # frames sampled per second; ClipScorer replaces it with its checkpoint's face rate

    def describe(self) -> str:
        return f"{_mb(self.max_bytes)} and {self.max_duration_s:g} s"


@dataclass
class DecodedMedia:
    """What was read from one file."""

    name: str
    format: str
    has_video: bool
    has_audio: bool
    is_image: bool
    duration_s: float
    n_frames: int = 0
    audio: np.ndarray | None = None
    sample_rate: int = AUDIO_RATE
    notes: list[str] = field(default_factory=list)
    image: np.ndarray | None = None


# ------------------------------------------------------------------------------------------------ recognising
def format_label(fmt: str) -> str:
    """A person's name for a format: ``"mp4"`` -> ``"MP4/QuickTime"``; a format PyAV recognised by probing keeps
    ffmpeg's long name (``"flv"`` -> ``"FLV (Flash Video)"``)."""
    return FORMAT_LABEL.get(fmt) or _PROBED_LABELS.get(fmt) or f"{fmt} media"


_PROBED_LABELS: dict[str, str] = {}


def probe(data: "bytes | MediaSource") -> str | None:
    """Ask PyAV (ffmpeg's probing) what container ``data`` (bytes, or a :class:`MediaSource`) is; its name (e.g.
    ``"flv"``, ``"asf"``, ``"mpegts"``) when it holds an audio or video stream, else None. Used for every format
    :func:`sniff` does not know."""
    import av

    try:
        with _open_file(data) as handle, av.open(handle, mode="r", metadata_errors="ignore") as container:
            if not any(s.type in ("audio", "video") for s in container.streams):
                return None
            name = container.format.name.split(",")[0]
            _PROBED_LABELS.setdefault(name, container.format.long_name or name)
            return name
    except Exception:  # noqa: BLE001 - av.error.*: not media ffmpeg can open
        return None


def sniff(head: bytes) -> str | None:
    """The container/image format from the first bytes of a file, or None when the bytes alone do not tell
    (:func:`probe` then asks PyAV)."""
    if len(head) >= 12 and head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if head.startswith(b"RIFF") and len(head) >= 12:
        return {b"AVI ": "avi", b"WAVE": "wav", b"WEBP": "webp"}.get(head[8:12])
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE6) in (0xE2, 0xE4, 0xE6)):
        return "mp3"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"BM"):
        return "bmp"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    return None


HEAD_BYTES = 64


@dataclass(frozen=True)
class MediaSource:
    """One input file, checked (exists, not empty, not above the size limit) but not read: a path on disk (read in
    pieces when decoded) or bytes in memory (an upload). ``head``: its first bytes, for recognising the format."""

    name: str
    size: int
    head: bytes
    path: Path | None = None
    data: bytes | None = None

    def open(self):  # noqa: ANN201 - a binary file object
        return open(self.path, "rb") if self.data is None else io.BytesIO(self.data)

    def read_all(self) -> bytes:
        if self.data is not None:
            return self.data
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read {self.path}: {exc.strerror or exc}.") from None


def _open_file(data: "bytes | MediaSource"):  # noqa: ANN202
    return data.open() if isinstance(data, MediaSource) else io.BytesIO(data)


def open_source(source: Source | MediaSource, limits: ClipLimits) -> MediaSource:
    """A :class:`MediaSource` for a path, bytes or :class:`NamedBytes`, with the size checks (missing, a folder,
    empty, too large)."""
    if isinstance(source, MediaSource):
        return source
    if isinstance(source, NamedBytes):
        name, data = source.name, source.data
    elif isinstance(source, (bytes, bytearray)):
        name, data = "upload", bytes(source)
    else:
        path = Path(source)
        name = path.name
        if not path.exists():
            raise DataError(f"{path}: no such file.")
        if path.is_dir():
            raise DataError(f"{path} is a folder, not a file. To judge every clip in a folder, give the folder as "
                            f"FILE (score FOLDER); --voice and --baseline each take one recording.")
        size = path.stat().st_size
        if size == 0:
            raise DataError(f"{name} is empty (0 bytes).")
        if size > limits.max_bytes:
            raise DataError(_too_big(name, size, limits))
        try:
            with open(path, "rb") as handle:
                head = handle.read(HEAD_BYTES)
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}.") from None
        if not head:
            raise DataError(f"{name} is empty (0 bytes).")
        return MediaSource(name=name, size=size, head=head, path=path)
    if len(data) == 0:
        raise DataError(f"{name} is empty (0 bytes).")
    if len(data) > limits.max_bytes:
        raise DataError(_too_big(name, len(data), limits))
    return MediaSource(name=name, size=len(data), head=data[:HEAD_BYTES], data=data)


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 10e6 else f"{n / 1e6:.2g} MB"


def _too_big(name: str, size: int, limits: ClipLimits) -> str:
    return (f"{name} is {_mb(size)}; the limit is {_mb(limits.max_bytes)} (change it with --max-mb or "
            f"CROSSEMO_CLIP_MAX_MB).")


def recognise(name: str, data: "bytes | MediaSource") -> tuple[str, list[str]]:
    """The format to read ``data`` (bytes, or a :class:`MediaSource`) as, and notes (a lying extension);
    DataError when it is nothing readable."""
    ext = Path(name).suffix.lower().lstrip(".")
    head = data.head if isinstance(data, MediaSource) else data[:64]
    found = sniff(head[:64]) or probe(data)
    if found in ("gif", "tiff"):
        raise DataError(f"{name} is a {format_label(found)}; crossemo reads still images as "
                        f"{', '.join(IMAGE_EXTENSIONS)}.")
    if found is None:
        if ext in SUPPORTED:
            raise DataError(f"{name} is not a readable {_kind_of_ext(ext)} file: its content matches no video, audio "
                            f"or image format (the file is corrupt, or not what its extension says).")
        raise DataError(f"{name} is not a video, audio or image file that crossemo (ffmpeg) can read.")
    notes = []
    if ext in _EXT_FORMAT and _EXT_FORMAT[ext] != found:
        notes.append(f"{name}: the extension says .{ext} but the content is {format_label(found)}; "
                     f"it was read as {format_label(found)}.")
    return found, notes


def media_files(folder: Path, head_bytes: int = 4_000_000) -> list[tuple[Path, str | None]]:
    """Every file of ``folder`` (sorted, not recursive) with ``None`` when its content is media crossemo reads, or
    the one-line reason it is skipped. Recognised by content (the first ``head_bytes``), whatever the extension."""
    out: list[tuple[Path, str | None]] = []
    for f in sorted(p for p in folder.iterdir() if p.is_file()):
        try:
            with open(f, "rb") as handle:
                head = handle.read(head_bytes)
        except OSError as exc:
            out.append((f, f"{f.name}: skipped, cannot be read ({exc.strerror or exc})."))
            continue
        if not head:
            out.append((f, f"{f.name}: skipped, empty (0 bytes)."))
        elif (sniff(head[:64]) or probe(head)) in (None, "gif", "tiff"):
            out.append((f, f"{f.name}: skipped, not a video, audio or image file crossemo (ffmpeg) can read."))
        else:
            out.append((f, None))
    return out


def _kind_of_ext(ext: str) -> str:
    return "video" if ext in VIDEO_EXTENSIONS else "audio" if ext in AUDIO_EXTENSIONS else "image"


# ------------------------------------------------------------------------------------------------ decoding
@dataclass(frozen=True)
class VideoSample:
    """One sampled video frame: its time (seconds from time zero) and its pixels (RGB uint8, ``None`` when the
    stream was opened with ``pixels=False``)."""

    t: float
    rgb: np.ndarray | None


MAX_SAMPLE = 8.0
"""An audio sample beyond this many times full scale (18 dB; codecs overshoot full scale by far less) is damage, not
sound: such audio is clipped to full scale, with a note."""
CLIPPED_LEVEL = 0.99
"""A sample this close to full scale or beyond (and within :data:`MAX_SAMPLE`) counts as clipped."""
CLIPPED_SHARE = 0.001
"""More than this share of a recording's samples clipped gets a note: the sound was recorded too loud and is
distorted. On 30 RAVDESS takes of unseen actors, driven into clipping, 0.4 % of samples clipped changed the
voice's top valence in 3 takes and 3.5 % in 7 (session 27)."""


@dataclass(frozen=True)
class AudioBlock:
    """Consecutive audio samples (16 kHz mono float32) starting at sample ``start`` of the aligned timeline (sample 0
    is time zero, where the video starts)."""

    start: int
    samples: np.ndarray

    @property
    def end(self) -> int:
        return self.start + len(self.samples)


MediaEvent = Union[VideoSample, AudioBlock]


class MediaStream:
    """An opened media file: what it holds (known before decoding: :attr:`has_video`, :attr:`has_audio`,
    :attr:`declared_s`), then, iterated once, its decoded content in time order (:class:`VideoSample` and
    :class:`AudioBlock` events), then :meth:`finish` for the summary. Use it as a context manager (or call
    :meth:`close`) so that the file is closed when the iteration stops early.

    ``span`` ``(start_s, end_s)``: only that stretch of the file; times and samples then count from ``start_s``.
    """

    def __init__(self, src: MediaSource, fmt: str, notes: list[str], limits: ClipLimits, want_video: bool,
                 want_audio: bool, need_video: bool, need_audio: bool, pixels: bool,
                 span: tuple[float, float] | None, time_zero: float | None = None) -> None:
        self.source, self.name, self.format, self.limits = src, src.name, fmt, limits
        self.time_zero = time_zero
        self.notes: list[str] = list(notes)
        self.pixels, self.span = pixels, span
        self.is_image = fmt in IMAGE_FORMATS
        self.image: np.ndarray | None = None
        self._container = None
        self._handle = None
        self._iterated = False
        self._n_frames, self._last_t, self._audio_pos = 0, 0.0, 0
        self._not_finite, self._far_beyond = 0, 0  # audio samples repaired (see _decoded)
        self._decoded_samples, self._clipped = 0, 0
        self._dc_blocker = DcBlocker(AUDIO_RATE)
        self._any_audio = False
        self._error: str | None = None
        if self.is_image:
            if need_audio:
                raise DataError(NO_AUDIO_IMAGE.format(name=self.name))
            media = _decode_image(self.name, src.read_all(), fmt, limits)
            self.image, self.has_video, self.has_audio, self.declared_s = media.image, True, False, 0.0
            self.use_video = self.use_audio = False
            return
        self._open_av(want_video, want_audio, need_video, need_audio)

    # -------------------------------------------------------------------------------------------- opening
    def _open_av(self, want_video: bool, want_audio: bool, need_video: bool, need_audio: bool) -> None:
        import av

        name, label, limits = self.name, format_label(self.format), self.limits
        handle = self.source.open()
        try:
            container = av.open(handle, mode="r", metadata_errors="ignore")
        except Exception as exc:  # noqa: BLE001 - av.error.* and OSError
            handle.close()
            raise DataError(f"{name} cannot be opened as {label}: the file is damaged or truncated "
                            f"({_av_message(exc)}).") from None
        self._container, self._handle = container, handle
        try:
            vstreams = [s for s in container.streams.video if s.codec_context is not None]
            astreams = list(container.streams.audio)
            self.has_video, self.has_audio = bool(vstreams), bool(astreams)
            self.declared_s = _declared_duration(container, vstreams + astreams)
            if self.declared_s is not None and self.declared_s > limits.max_duration_s + 0.5:
                raise DataError(f"{name} lasts {_fmt_duration(self.declared_s)}; the limit is "
                                f"{limits.max_duration_s:g} s (cut the clip, or change the limit with --max-seconds "
                                f"or CROSSEMO_CLIP_MAX_SECONDS).")
            if not self.has_video and not self.has_audio:
                raise DataError(f"{name} holds neither a video nor an audio track.")
            if need_video and not self.has_video:
                raise DataError(NO_VIDEO.format(name=name))
            if need_audio and not self.has_audio:
                raise DataError(NO_AUDIO.format(name=name))
            # 0 or None: not said; a damaged stream without a codec context raises AttributeError for it
            rate = getattr(astreams[0], "rate", None) if want_audio and astreams else None
            if rate and rate < MIN_AUDIO_RATE:
                slow = too_slow_for_speech(name, rate)
                if need_audio or not self.has_video:
                    raise DataError(slow + ".")
                self.notes.append(slow + "; the audio track was left out.")
                astreams, self.has_audio = [], False
        except BaseException:
            self.close()
            raise
        self.use_video = want_video and self.has_video
        self.use_audio = want_audio and self.has_audio
        self._vstream = vstreams[0] if self.use_video else None
        self._astream = astreams[0] if self.use_audio else None
        self._first_stream = vstreams[0] if self.use_video else astreams[0]

    @property
    def expected_s(self) -> float | None:
        """How long the decoded part should last: the span's length, else the declared duration (None: unknown)."""
        if self.span is not None:
            length = self.span[1] - self.span[0]
            return length if self.declared_s is None else max(0.0, min(length, self.declared_s - self.span[0]))
        return self.declared_s

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> "MediaStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------------- decoding
    def __iter__(self) -> Iterator[MediaEvent]:
        if self._iterated:
            raise RuntimeError("a MediaStream is iterated once")
        self._iterated = True
        if self.is_image or self._container is None:
            return
        import av

        container, limits, name = self._container, self.limits, self.name
        streams = ([self._vstream] if self.use_video else []) + ([self._astream] if self.use_audio else [])
        if self.use_video:
            self._vstream.thread_type = "AUTO"
            # Every frame is decoded (no skip_frame="NONREF"): with B-frames, non-reference frames can be two of
            # every three or more, so skipping them left fewer frames than the sampling rate asks for; decoding
            # them costs ~20 ms per 10 s of 25 fps 640x360 H.264.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE) if self.use_audio else None
        # Time zero is where the video starts (else the audio): audio is then cut or padded to start there too, so
        # a remux that moves the audio's priming samples (mp4 edit list -> mkv) does not shift face against voice.
        first_t = self.time_zero if self.time_zero is not None else (_stream_start(self._first_stream) if streams
                                                                     else None)
        self.time_zero = first_t
        span0, span1 = self.span if self.span is not None else (0.0, float("inf"))
        lo, hi = int(round(span0 * AUDIO_RATE)), (int(round(span1 * AUDIO_RATE)) if self.span else None)
        audio_offset: float | None = None  # seconds; > 0: pad with silence, < 0: cut
        next_t, pos = span0, 0  # pos: aligned samples seen so far (emitted or cut by the span)
        video_done, audio_done = not self.use_video, not self.use_audio
        try:
            for packet in container.demux(streams) if streams else ():
                for frame in packet.decode():
                    t = _frame_time(frame)
                    if first_t is None and t is not None:
                        first_t = self.time_zero = t
                    t_rel = max(0.0, (t if t is not None else self._last_t + span0) - (first_t or 0.0))
                    if t_rel > limits.max_duration_s + 0.5:
                        raise DataError(f"{name} lasts more than {limits.max_duration_s:g} s, the limit (cut "
                                        f"the clip, or change the limit with --max-seconds or "
                                        f"CROSSEMO_CLIP_MAX_SECONDS).")
                    if span0 <= t_rel < span1:
                        self._last_t = max(self._last_t, t_rel - span0)
                    if isinstance(frame, av.VideoFrame):
                        if t_rel >= span1:
                            video_done = True
                        elif t_rel + 1e-6 >= next_t:
                            next_t += 1.0 / limits.fps
                            while next_t <= t_rel:  # a gap in the video: do not emit a burst of frames
                                next_t += 1.0 / limits.fps
                            self._n_frames += 1
                            yield VideoSample(t_rel - span0, _to_rgb(frame, limits.max_frame_side)
                                              if self.pixels else None)
                    else:
                        if audio_offset is None:
                            audio_start = t if t is not None else first_t
                            audio_offset = (audio_start - first_t if audio_start is not None and first_t is not None
                                            else 0.0)
                            n = int(round(abs(audio_offset) * AUDIO_RATE))
                            if audio_offset > 0 and n:
                                pos = yield from self._audio(np.zeros(n, np.float32), pos, lo, hi)
                            elif audio_offset < 0:
                                pos = -n  # the first n samples fall before time zero
                        for out in resampler.resample(frame):
                            pos = yield from self._audio(self._decoded(out), pos, lo, hi)
                        audio_done = hi is not None and pos >= hi
                if self.span is not None and video_done and audio_done:
                    break
            if resampler is not None and not (self.span is not None and audio_done):
                for out in resampler.resample(None):
                    pos = yield from self._audio(self._decoded(out), pos, lo, hi)
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - av.error.* during decoding: damaged or truncated data
            self._error = _av_message(exc)
        held = self._dc_blocker.flush()  # audio shorter than the blocker's start (DC_START_S) is still held
        if len(held):
            yield from self._audio(held, pos, lo, hi)

    def _decoded(self, frame) -> np.ndarray:  # noqa: ANN001 - an av.AudioFrame, 16 kHz mono float
        """A resampled audio frame's samples, damaged ones repaired (NaN or infinite: silence; more than
        :data:`MAX_SAMPLE` beyond full scale: full scale), clipped ones counted (:data:`CLIPPED_LEVEL`) and the
        recording's constant offset removed."""
        samples = frame.to_ndarray().reshape(-1).astype(np.float32)
        bad = ~np.isfinite(samples)
        level = np.abs(np.where(bad, 0.0, samples))
        far = level > MAX_SAMPLE
        self._decoded_samples += len(samples)
        self._clipped += int(np.count_nonzero((level >= CLIPPED_LEVEL) & ~far))
        if bad.any() or far.any():  # damaged samples, not sound
            self._not_finite += int(bad.sum())
            self._far_beyond += int(far.sum())
            samples = np.clip(np.where(bad, 0.0, samples), -1.0, 1.0).astype(np.float32)
        return self._dc_blocker(samples)

    def _audio(self, samples: np.ndarray, pos: int, lo: int, hi: int | None) -> Iterator[AudioBlock]:
        """Yield the part of ``samples`` (which start at aligned sample ``pos``) inside ``[lo, hi)``, as counted
        from ``lo``; returns the new position."""
        self._any_audio = True
        end = pos + len(samples)
        a, b = max(pos, lo), end if hi is None else min(end, hi)
        if b > a:
            block = AudioBlock(a - lo, samples[a - pos:b - pos])
            self._audio_pos = block.end
            yield block
        return end

    def finish(self) -> DecodedMedia:
        """The summary once iterated (errors as :func:`decode_media` raises them): length, frames, notes."""
        name = self.name
        if self.is_image:
            return DecodedMedia(name=name, format=self.format, has_video=True, has_audio=False, is_image=True,
                                duration_s=0.0, n_frames=1, image=self.image, notes=list(self.notes))
        notes = list(self.notes)
        got_audio_s = self._audio_pos / AUDIO_RATE
        decoded = max(self._last_t, got_audio_s)
        error = self._error
        if self.use_video and self._n_frames == 0 and (not self.use_audio or not self._any_audio):
            raise DataError(f"{name} is damaged or truncated: no frame could be decoded"
                            + (f" ({error})." if error else "."))
        if self.use_audio and not self.use_video and (not self._any_audio or self._audio_pos == 0):
            raise DataError(f"{name} is damaged or truncated: no audio could be decoded"
                            + (f" ({error})." if error else "."))
        if self._not_finite:
            notes.append(f"{name}: {self._not_finite:,} audio samples were NaN or infinite (damaged) and were read "
                         f"as silence.")
        if self._far_beyond:
            notes.append(f"{name}: {self._far_beyond:,} audio samples lay more than {MAX_SAMPLE:g} times beyond full "
                         f"scale (damaged, or not audio); that audio was clipped to full scale.")
        if self._clipped > CLIPPED_SHARE * self._decoded_samples:
            notes.append(f"{name}: its sound is clipped (at full scale) in {self._clipped / self._decoded_samples:.1%} "
                         f"of its samples: it was recorded too loud and is distorted, which can change the voice's "
                         f"reading (record at a lower input level).")
        if error is not None:
            notes.append(f"{name} is damaged or truncated: decoding stopped at {decoded:.1f} s ({error}); "
                         f"only what could be read was analysed.")
        elif self.span is None and self.declared_s is not None and decoded < 0.8 * self.declared_s - 0.5:
            notes.append(f"{name} looks truncated: it declares {self.declared_s:.1f} s but only {decoded:.1f} s "
                         f"could be decoded; only that part was analysed.")
        head, size = self.source.head, self.source.size
        if head[:4] == b"RIFF" and len(head) >= 8:  # wav/avi: ffmpeg takes the duration from the file size
            declared_bytes = int.from_bytes(head[4:8], "little") + 8
            if declared_bytes > size + 1024 and not any("truncated" in n for n in notes):
                notes.append(f"{name} looks truncated: its header declares {declared_bytes:,} bytes but the "
                             f"file has {size:,}; only what could be read was analysed.")
        return DecodedMedia(name=name, format=self.format, has_video=self.has_video, has_audio=self.has_audio,
                            is_image=False, duration_s=decoded, n_frames=self._n_frames, notes=notes)


def open_media(source: Source | MediaSource, *, limits: ClipLimits | None = None, want_video: bool = True,
               want_audio: bool = True, need_video: bool = False, need_audio: bool = False, pixels: bool = True,
               span: tuple[float, float] | None = None, time_zero: float | None = None) -> MediaStream:
    """Open ``source`` for decoding (see :class:`MediaStream`); the checks that need no decoding (size, format,
    declared length, tracks) are made here and raise :class:`DataError`. ``time_zero``: the container time that is
    time zero (the :attr:`MediaStream.time_zero` of an earlier pass over the same file, so that an audio-only pass
    aligns its samples as the pass with the video did)."""
    limits = limits or ClipLimits()
    src = open_source(source, limits)
    fmt, notes = recognise(src.name, src)
    return MediaStream(src, fmt, notes, limits, want_video, want_audio, need_video, need_audio, pixels, span,
                       time_zero)


def decode_media(source: Source, *, limits: ClipLimits | None = None, want_video: bool = True,
                 want_audio: bool = True, on_frame: FrameCallback | None = None, need_video: bool = False,
                 need_audio: bool = False, span: tuple[float, float] | None = None) -> DecodedMedia:
    """Decode ``source``. Sampled video frames go to ``on_frame(t_seconds, rgb_uint8)``; still images are
    returned in ``image``; audio (when ``want_audio``) in ``audio`` at 16 kHz mono.

    ``need_video`` / ``need_audio``: refuse (before decoding anything) a file without a video / audio track.
    Raises :class:`DataError` for a missing, empty, oversized, unrecognised, corrupt or too long file.
    """
    with open_media(source, limits=limits, want_video=want_video, want_audio=want_audio, need_video=need_video,
                    need_audio=need_audio, pixels=on_frame is not None, span=span) as stream:
        blocks: list[np.ndarray] = []
        for event in stream:
            if isinstance(event, AudioBlock):
                blocks.append(event.samples)
            elif on_frame is not None:
                on_frame(event.t, event.rgb)
        media = stream.finish()
    if stream.use_audio and stream._any_audio:
        media.audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    return media


def _decode_image(name: str, data: bytes, fmt: str, limits: ClipLimits) -> DecodedMedia:
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > limits.max_image_pixels:
                raise DataError(f"{name} is {im.width}x{im.height} pixels; the limit is "
                                f"{limits.max_image_pixels / 1e6:.0f} megapixels.")
            im = _eight_bit(ImageOps.exif_transpose(im)).convert("RGB")
            scale = limits.max_image_side / max(im.size)
            if scale < 1:
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                               Image.Resampling.LANCZOS)
            rgb = np.asarray(im, dtype=np.uint8).copy()
    except DataError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, before the size could be asked for
        raise DataError(f"{name} is too large an image ({str(exc).split(' could be')[0]}); the limit is "
                        f"{limits.max_image_pixels / 1e6:.0f} megapixels.") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged images
        raise DataError(f"{name} is a damaged or truncated {format_label(fmt)} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else 'no details'}).") from None
    return DecodedMedia(name=name, format=fmt, has_video=True, has_audio=False, is_image=True, duration_s=0.0,
                        n_frames=1, image=rgb)


def _eight_bit(im):  # noqa: ANN001, ANN202 - a PIL image in, one with 8 bits per channel out
    """A 16-bit grey image (a PNG's; Pillow 12 opens it as ``I;16``, earlier versions, which requirements.txt
    allows, as ``I``) brought to 8 bits (``convert("RGB")`` clips it at 255, which turned a 16-bit photo white);
    other images as they are."""
    from PIL import Image

    if im.mode not in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        return im
    values = np.asarray(im, dtype=np.float64)
    if im.mode != "I" or values.max(initial=0) > 255:
        values = values / 257.0  # 0..65535 -> 0..255
    return Image.fromarray(np.clip(values, 0, 255).round().astype(np.uint8), "L")


def _declared_duration(container, streams) -> float | None:  # noqa: ANN001
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    durations = [float(s.duration * s.time_base) for s in streams if s.duration and s.time_base]
    return max(durations) if durations else None


def _stream_start(stream) -> float | None:  # noqa: ANN001
    """When a stream starts on the container's clock (seconds), from its header; None when not declared."""
    if stream.start_time is None or stream.time_base is None:
        return None
    return float(stream.start_time * stream.time_base)


def _align_audio(audio: np.ndarray, offset_s: float) -> np.ndarray:
    """Audio whose first sample lies ``offset_s`` after time zero, cut (offset < 0) or padded with silence (> 0)
    so that its first sample is at time zero."""
    n = int(round(abs(offset_s) * AUDIO_RATE))
    if offset_s < 0:
        return audio[n:]
    return np.concatenate([np.zeros(n, np.float32), audio]) if n else audio


def _frame_time(frame) -> float | None:  # noqa: ANN001
    try:
        return None if frame.time is None else float(frame.time)
    except Exception:  # noqa: BLE001
        return None


_LUMA_WEIGHTS = {1: (0.2126, 0.0722), 2: (0.299, 0.114), 5: (0.299, 0.114), 6: (0.299, 0.114)}
"""(Kr, Kb) of the colour matrices converted without swscale, by ffmpeg's colorspace code: BT.709 (1); BT.601 for
unspecified (2, as swscale assumes), BT.470BG (5) and SMPTE 170M (6)."""


@functools.lru_cache(maxsize=8)
def _yuv_to_rgb_matrix(colorspace: int, full_range: bool) -> np.ndarray:
    """``(3, 4)`` float32 affine map from ``[Y, Cb, Cr, 1]`` (8 bit) to ``[R, G, B]``."""
    kr, kb = _LUMA_WEIGHTS[colorspace]
    kg = 1.0 - kr - kb
    y_scale, c_scale, y_offset = (1.0, 1.0, 0.0) if full_range else (255 / 219, 255 / 224, 16.0)
    rows = ((y_scale, 0.0, 2 * (1 - kr) * c_scale),
            (y_scale, -2 * kb * (1 - kb) / kg * c_scale, -2 * kr * (1 - kr) / kg * c_scale),
            (y_scale, 2 * (1 - kb) * c_scale, 0.0))
    return np.array([[a, b, c, -a * y_offset - 128 * (b + c)] for a, b, c in rows], np.float32)


def _to_rgb(frame, max_side: int) -> np.ndarray:  # noqa: ANN001
    """A decoded video frame -> ``(H, W, 3)`` uint8 RGB, the longer side scaled down to at most ``max_side``.

    8-bit 4:2:0 frames (most H.264, HEVC, VP8/9 and MPEG-4 video) are converted here with OpenCV: luma scaled with
    area averaging, chroma upsampled bilinearly, then the frame's own colour matrix and range (BT.601 or BT.709,
    video or full range). Within one or two grey levels of ffmpeg's swscale (tested), in ~0.2-0.5 ms a 640x360
    frame on this project's 2-core machine, where swscale takes ~0.25 ms when the cores are idle but 3.5-6 ms when
    they are busy (its slice threads wait for them), as they are during a session's analysis. Any other frame goes
    through swscale."""
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    tw, th = max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)
    fmt = frame.format.name
    colorspace = int(getattr(frame, "colorspace", 2) or 2)
    if fmt in ("yuv420p", "yuvj420p") and colorspace in _LUMA_WEIGHTS and w % 2 == 0 and h % 2 == 0:
        import cv2

        yuv = frame.to_ndarray(format=fmt)
        luma, chroma = yuv[:h], yuv[h:].reshape(2, h // 2, w // 2)
        if (tw, th) != (w, h):
            luma = cv2.resize(luma, (tw, th), interpolation=cv2.INTER_AREA)
        cb, cr = (cv2.resize(c, (tw, th), interpolation=cv2.INTER_LINEAR) for c in chroma)
        full_range = fmt == "yuvj420p" or int(getattr(frame, "color_range", 0) or 0) == 2
        rgb = cv2.transform(cv2.merge([luma, cb, cr]), _yuv_to_rgb_matrix(colorspace, full_range))
    else:
        rgb = frame.to_ndarray(format="rgb24", width=tw, height=th)
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360  # phone videos: display matrix
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb


def _av_message(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"ffmpeg: {text[:160]}"


def _fmt_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m} min {s} s" if m else f"{s} s"
