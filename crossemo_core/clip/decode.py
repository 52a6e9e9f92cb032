"""Reading a clip: video files, audio files and still images, from a path or from bytes (an upload).

Everything is decoded in memory with PyAV (which ships its own ffmpeg) or Pillow (still images); nothing is written
to disk. The format is recognised from the file's first bytes, not from its name: a file whose extension says one
thing and whose content another is read by its content, with a note saying so.

Video frames are not kept: :func:`decode_media` samples them at ``fps`` and hands each sampled frame (RGB, scaled
so its longer side is at most ``limits.max_frame_side``) to a callback, so memory stays bounded for long clips.
Audio is resampled to 16 kHz mono float32 and returned whole.

Limits (:class:`ClipLimits`) are checked before decoding where possible (file size, declared duration) and during
decoding otherwise; an input above a limit is refused with a message naming the limit and how to change it.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import numpy as np

from crossemo_core.errors import DataError
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


@dataclass(frozen=True)
class NamedBytes:
    """An in-memory file (e.g. an upload): its name (for messages and the extension check) and its bytes."""

    name: str
    data: bytes


@dataclass(frozen=True)
class ClipLimits:
    """Caps on what a clip may be. ``CROSSEMO_CLIP_MAX_MB`` / ``CROSSEMO_CLIP_MAX_SECONDS`` change the defaults."""

    max_bytes: int = field(default_factory=lambda: int(positive_number("CROSSEMO_CLIP_MAX_MB", 200) * 1e6))
    max_duration_s: float = field(default_factory=lambda: positive_number("CROSSEMO_CLIP_MAX_SECONDS", 120))
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


def probe(data: bytes) -> str | None:
    """Ask PyAV (ffmpeg's probing) what container ``data`` is; its name (e.g. ``"flv"``, ``"asf"``, ``"mpegts"``)
    when it holds an audio or video stream, else None. Used for every format :func:`sniff` does not know."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as container:
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


def _read(source: Source, limits: ClipLimits) -> tuple[str, bytes]:
    """Name and bytes of a source, with the size checks (missing, empty, too large)."""
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
            data = path.read_bytes()
        except OSError as exc:
            raise DataError(f"cannot read {path}: {exc.strerror or exc}.") from None
    if len(data) == 0:
        raise DataError(f"{name} is empty (0 bytes).")
    if len(data) > limits.max_bytes:
        raise DataError(_too_big(name, len(data), limits))
    return name, data


def _mb(n: float) -> str:
    return f"{n / 1e6:.0f} MB" if n >= 10e6 else f"{n / 1e6:.2g} MB"


def _too_big(name: str, size: int, limits: ClipLimits) -> str:
    return (f"{name} is {_mb(size)}; the limit is {_mb(limits.max_bytes)} (change it with --max-mb or "
            f"CROSSEMO_CLIP_MAX_MB).")


def recognise(name: str, data: bytes) -> tuple[str, list[str]]:
    """The format to read ``data`` as, and notes (a lying extension); DataError when it is nothing readable."""
    ext = Path(name).suffix.lower().lstrip(".")
    found = sniff(data[:64]) or probe(data)
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
def decode_media(source: Source, *, limits: ClipLimits | None = None, want_video: bool = True,
                 want_audio: bool = True, on_frame: FrameCallback | None = None, need_video: bool = False,
                 need_audio: bool = False) -> DecodedMedia:
    """Decode ``source``. Sampled video frames go to ``on_frame(t_seconds, rgb_uint8)``; still images are
    returned in ``image``; audio (when ``want_audio``) in ``audio`` at 16 kHz mono.

    ``need_video`` / ``need_audio``: refuse (before decoding anything) a file without a video / audio track.
    Raises :class:`DataError` for a missing, empty, oversized, unrecognised, corrupt or too long file.
    """
    limits = limits or ClipLimits()
    name, data = _read(source, limits)
    fmt, notes = recognise(name, data)
    if fmt in IMAGE_FORMATS:
        if need_audio:
            raise DataError(NO_AUDIO_IMAGE.format(name=name))
        media = _decode_image(name, data, fmt, limits)
    else:
        media = _decode_av(name, data, fmt, limits, want_video, want_audio, on_frame, need_video, need_audio)
        if data[:4] == b"RIFF" and len(data) >= 8:  # wav/avi: ffmpeg takes the duration from the file size
            declared_bytes = int.from_bytes(data[4:8], "little") + 8
            if declared_bytes > len(data) + 1024 and not any("truncated" in n for n in media.notes):
                media.notes.append(f"{name} looks truncated: its header declares {declared_bytes:,} bytes but the "
                                   f"file has {len(data):,}; only what could be read was analysed.")
    media.notes[:0] = notes
    return media


def _decode_image(name: str, data: bytes, fmt: str, limits: ClipLimits) -> DecodedMedia:
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.width * im.height > limits.max_image_pixels:
                raise DataError(f"{name} is {im.width}x{im.height} pixels; the limit is "
                                f"{limits.max_image_pixels / 1e6:.0f} megapixels.")
            im = ImageOps.exif_transpose(im).convert("RGB")
            scale = limits.max_image_side / max(im.size)
            if scale < 1:
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                               Image.Resampling.LANCZOS)
            rgb = np.asarray(im, dtype=np.uint8).copy()
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged images
        raise DataError(f"{name} is a damaged or truncated {format_label(fmt)} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:120] if str(exc) else 'no details'}).") from None
    return DecodedMedia(name=name, format=fmt, has_video=True, has_audio=False, is_image=True, duration_s=0.0,
                        n_frames=1, image=rgb)


def _decode_av(name: str, data: bytes, fmt: str, limits: ClipLimits, want_video: bool, want_audio: bool,
               on_frame: FrameCallback | None, need_video: bool = False, need_audio: bool = False) -> DecodedMedia:
    import av

    label = format_label(fmt)
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except Exception as exc:  # noqa: BLE001 - av.error.* and OSError
        raise DataError(f"{name} cannot be opened as {label}: the file is damaged or truncated "
                        f"({_av_message(exc)}).") from None
    notes: list[str] = []
    with container:
        vstreams = [s for s in container.streams.video if s.codec_context is not None]
        astreams = list(container.streams.audio)
        has_video, has_audio = bool(vstreams), bool(astreams)
        declared = _declared_duration(container, vstreams + astreams)
        if declared is not None and declared > limits.max_duration_s + 0.5:
            raise DataError(f"{name} lasts {_fmt_duration(declared)}; the limit is {limits.max_duration_s:g} s "
                            f"(cut the clip, or change the limit with --max-seconds or CROSSEMO_CLIP_MAX_SECONDS).")
        if not has_video and not has_audio:
            raise DataError(f"{name} holds neither a video nor an audio track.")
        if need_video and not has_video:
            raise DataError(NO_VIDEO.format(name=name))
        if need_audio and not has_audio:
            raise DataError(NO_AUDIO.format(name=name))
        use_video = want_video and has_video
        use_audio = want_audio and has_audio
        streams = ([vstreams[0]] if use_video else []) + ([astreams[0]] if use_audio else [])
        if use_video:
            vstreams[0].thread_type = "AUTO"
            # Every frame is decoded (no skip_frame="NONREF"): with B-frames, non-reference frames can be two of
            # every three or more, so skipping them left fewer frames than the sampling rate asks for; decoding
            # them costs ~20 ms per 10 s of 25 fps 640x360 H.264.
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE) if use_audio else None
        chunks: list[np.ndarray] = []
        # Time zero is where the video starts (else the audio): audio is then cut or padded to start there too, so
        # a remux that moves the audio's priming samples (mp4 edit list -> mkv) does not shift face against voice.
        first_t = _stream_start(vstreams[0] if use_video else astreams[0]) if streams else None
        audio_start: float | None = None
        next_t, n_frames, last_t = 0.0, 0, 0.0
        error: str | None = None
        try:
            for packet in container.demux(streams) if streams else ():
                for frame in packet.decode():
                    t = _frame_time(frame)
                    if first_t is None and t is not None:
                        first_t = t
                    t_rel = max(0.0, (t if t is not None else last_t) - (first_t or 0.0))
                    if t_rel > limits.max_duration_s + 0.5:
                        raise DataError(f"{name} lasts more than {limits.max_duration_s:g} s, the limit (cut "
                                        f"the clip, or change the limit with --max-seconds or "
                                        f"CROSSEMO_CLIP_MAX_SECONDS).")
                    last_t = max(last_t, t_rel)
                    if isinstance(frame, av.VideoFrame):
                        if t_rel + 1e-6 >= next_t:
                            next_t += 1.0 / limits.fps
                            while next_t <= t_rel:  # a gap in the video: do not emit a burst of frames
                                next_t += 1.0 / limits.fps
                            n_frames += 1
                            if on_frame is not None:
                                on_frame(t_rel, _to_rgb(frame, limits.max_frame_side))
                    else:
                        if audio_start is None:
                            audio_start = t if t is not None else first_t
                        for out in resampler.resample(frame):
                            chunks.append(out.to_ndarray().reshape(-1).astype(np.float32))
            if resampler is not None:
                for out in resampler.resample(None):
                    chunks.append(out.to_ndarray().reshape(-1).astype(np.float32))
        except DataError:
            raise
        except Exception as exc:  # noqa: BLE001 - av.error.* during decoding: damaged or truncated data
            error = _av_message(exc)
        audio = np.concatenate(chunks) if chunks else None
        if audio is not None and audio_start is not None and first_t is not None:
            audio = _align_audio(audio, audio_start - first_t)
        got_audio_s = 0.0 if audio is None else len(audio) / AUDIO_RATE
        decoded = max(last_t, got_audio_s)
        if use_video and n_frames == 0 and (not use_audio or audio is None):
            raise DataError(f"{name} is damaged or truncated: no frame could be decoded"
                            + (f" ({error})." if error else "."))
        if use_audio and not use_video and (audio is None or len(audio) == 0):
            raise DataError(f"{name} is damaged or truncated: no audio could be decoded"
                            + (f" ({error})." if error else "."))
        if error is not None:
            notes.append(f"{name} is damaged or truncated: decoding stopped at {decoded:.1f} s ({error}); "
                         f"only what could be read was analysed.")
        elif declared is not None and decoded < 0.8 * declared - 0.5:
            notes.append(f"{name} looks truncated: it declares {declared:.1f} s but only {decoded:.1f} s could be "
                         f"decoded; only that part was analysed.")
    return DecodedMedia(name=name, format=fmt, has_video=has_video, has_audio=has_audio, is_image=False,
                        duration_s=decoded, n_frames=n_frames, audio=audio if use_audio else None, notes=notes)


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


def _to_rgb(frame, max_side: int) -> np.ndarray:  # noqa: ANN001
    w, h = frame.width, frame.height
    scale = min(1.0, max_side / max(w, h))
    tw, th = max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)
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
