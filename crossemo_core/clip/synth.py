"""Writing small media files in memory (PyAV's bundled encoders): used to build the demo assets, the test inputs and
the held-apart evaluation clips. Nothing here reads user data.
"""
from __future__ import annotations

import io
from fractions import Fraction
from typing import Callable

import numpy as np

AUDIO_RATE = 16000


def encode_video(frame_at: Callable[[int], np.ndarray], n_frames: int, fps: int = 25,
                 audio: np.ndarray | None = None, audio_rate: int = AUDIO_RATE, container: str = "mp4",
                 crf: int = 28, options: dict[str, str] | None = None, audio_bit_rate: int | None = None) -> bytes:
    """An H.264 (mp4/mkv) or VP8 (webm) video of ``n_frames`` RGB frames ``frame_at(i)`` (even width/height),
    with an AAC (mp4), Opus (webm/mkv) or no audio track from ``audio`` (mono float in [-1, 1]). ``options``: the
    video encoder's options (libx264 gets ``crf``, a fast preset and one thread otherwise: the same frames then give
    the same file every time, so copies of a clip rendered from the same frames differ only where they are meant to);
    ``audio_bit_rate``: the audio encoder's (bits/s; its default otherwise)."""
    import av

    first = frame_at(0)
    h, w = first.shape[:2]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format={"mp4": "mp4", "webm": "webm", "mkv": "matroska", "avi": "avi"}[container]) as out:
        vcodec = {"mp4": "libx264", "mkv": "libx264", "webm": "libvpx", "avi": "mpeg4"}[container]
        vs = out.add_stream(vcodec, rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        if options is not None:
            vs.options = dict(options)
        elif vcodec == "libx264":  # one thread: with several, x264 gave other pictures from run to run here
            vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        as_ = None
        if audio is not None:
            acodec = {"mp4": "aac", "mkv": "libopus", "webm": "libopus", "avi": "libmp3lame"}[container]
            rate = 48000 if acodec == "libopus" else audio_rate
            as_ = out.add_stream(acodec, rate=rate)
            as_.layout = "mono"
            if audio_bit_rate:
                as_.bit_rate = audio_bit_rate
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_at(i) if i else first), format="rgb24")
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if as_ is not None:
            _encode_audio(out, as_, audio, audio_rate)
    return buf.getvalue()


def _encode_audio(out, stream, audio: np.ndarray, rate: int) -> None:  # noqa: ANN001
    import av

    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=stream.codec_context.sample_rate)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    step = 1024
    for start in range(0, len(pcm), step):
        chunk = pcm[start:start + step][None, :]
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        for f in resampler.resample(frame):
            for packet in stream.encode(f):
                out.mux(packet)
    for f in resampler.resample(None):
        for packet in stream.encode(f):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def encode_audio(audio: np.ndarray, rate: int = AUDIO_RATE, fmt: str = "wav", bit_rate: int | None = None) -> bytes:
    """Mono float audio as a wav / flac / mp3 / ogg (Opus) / m4a (AAC) file in memory (``bit_rate`` in bit/s for
    the lossy ones; the encoder's default when None)."""
    if fmt in ("wav", "flac"):
        import soundfile as sf

        buf = io.BytesIO()
        sf.write(buf, np.clip(audio, -1, 1), rate, format=fmt.upper(), subtype="PCM_16")
        return buf.getvalue()
    import av

    container = {"mp3": "mp3", "ogg": "ogg", "m4a": "ipod"}[fmt]
    codec = {"mp3": "libmp3lame", "ogg": "libopus", "m4a": "aac"}[fmt]
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=48000 if codec == "libopus" else rate)
        stream.layout = "mono"
        if bit_rate:
            stream.bit_rate = bit_rate
        _encode_audio(out, stream, audio, rate)
    return buf.getvalue()


def shifted(audio: np.ndarray, seconds: float, rate: int = AUDIO_RATE) -> np.ndarray:
    """``audio`` delayed (> 0) or advanced (< 0) by ``seconds``, same length, silence where nothing was."""
    n = min(int(round(abs(seconds) * rate)), len(audio))
    pad = np.zeros(n, np.float32)
    return np.concatenate([pad, audio[:len(audio) - n]]) if seconds > 0 else np.concatenate([audio[n:], pad])


def encode_image(rgb: np.ndarray, fmt: str = "jpeg") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt.upper(), quality=90)
    return buf.getvalue()


def place(canvas_hw: tuple[int, int], face: np.ndarray, size: int, cx: float, cy: float,
          background: int = 60) -> np.ndarray:
    """An RGB canvas with ``face`` (RGB or grey) resized to ``size`` x ``size`` and centred at (cx, cy) pixels."""
    import cv2

    h, w = canvas_hw
    canvas = np.full((h, w, 3), background, np.uint8)
    img = face if face.ndim == 3 else np.repeat(face[..., None], 3, axis=2)
    img = cv2.resize(img, (size, size), interpolation=cv2.INTER_CUBIC if size > img.shape[0] else cv2.INTER_AREA)
    x0, y0 = int(round(cx - size / 2)), int(round(cy - size / 2))
    xa, ya, xb, yb = max(0, x0), max(0, y0), min(w, x0 + size), min(h, y0 + size)
    if xb > xa and yb > ya:
        canvas[ya:yb, xa:xb] = img[ya - y0:yb - y0, xa - x0:xb - x0]
    return canvas


def demo_clip(seconds: float = 10.0, fps: int = 25) -> bytes:
    """A ``seconds``-long 640x360 H.264 + AAC clip from the bundled demo assets (the photo drifting slightly, the
    synthetic voice looped): the clip the latency benchmarks time."""
    import soundfile as sf
    from PIL import Image

    from crossemo_core.paths import REPO

    assets = REPO / "assets" / "clips"
    face = np.asarray(Image.open(assets / "face_photo.jpg").convert("RGB"))
    voice, sr = sf.read(assets / "voice_upbeat.wav", dtype="float32")
    audio = np.tile(voice, int(np.ceil(seconds * sr / len(voice))))[: int(seconds * sr)]
    return encode_video(lambda i: place((360, 640), face, int(250 + 10 * np.sin(i / 20)), 320 + 15 * np.sin(i / 30),
                                        180), int(seconds * fps), fps, audio)


def remux(data: bytes, container: str = "matroska", audio_delay_s: float = 0.0) -> bytes:
    """The same packets in another container, nothing re-encoded (e.g. mp4 -> mkv, as a user's tool would).
    ``audio_delay_s``: the audio's timestamps moved later by this much against the video's (the video's moved later
    when it is negative), so that the sound plays that much after (before) the pictures."""
    import av

    buf = io.BytesIO()
    with av.open(io.BytesIO(data)) as inp, av.open(buf, "w", format=container) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        late = "audio" if audio_delay_s > 0 else "video"
        for packet in inp.demux():
            if packet.dts is not None:
                if audio_delay_s and packet.stream.type == late:
                    ticks = int(round(abs(audio_delay_s) / packet.time_base))
                    packet.dts += ticks
                    packet.pts = None if packet.pts is None else packet.pts + ticks
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    return buf.getvalue()


def to_webm(data: bytes) -> bytes:
    """The same recording as WebM (VP8 + Opus), re-encoded: WebM cannot hold H.264 or AAC, so a user's converter
    decodes and encodes again. The frames are decoded at their own rate and the audio as the decoder gives it (an
    mp4's edit list already applied), resampled to 16 kHz mono; Opus (128 kbit/s) then adds its own pre-skip. Not lossless: the voice comes back at
~32 dB SNR (resampling to 48 kHz and back included). libvpx's "good" deadline gives the same frames on every run
(its "realtime" one, used before, did not: one clip's copies came back with or without a face found)."""
    frames, audio, fps = decode_all(data)
    return encode_video(lambda i: frames[i], len(frames), fps, audio, container="webm",
                        options={"deadline": "good", "cpu-used": "5", "crf": "10", "b": "2M"},
                        audio_bit_rate=128000)


def decode_all(data: bytes) -> tuple[list[np.ndarray], np.ndarray | None, int]:
    """A short recording decoded whole: its RGB frames at their own rate, its audio as the decoder gives it (an
    mp4's edit list applied) resampled to 16 kHz mono (None without audio), and its frame rate (rounded)."""
    import av

    frames, pcm = [], []
    with av.open(io.BytesIO(data)) as inp:
        video = inp.streams.video[0]
        fps = int(round(float(video.average_rate or 25)))
        streams = [video] + list(inp.streams.audio[:1])
        resampler = av.AudioResampler(format="flt", layout="mono", rate=AUDIO_RATE)
        for frame in inp.decode(*streams):
            if isinstance(frame, av.VideoFrame):
                frames.append(frame.to_ndarray(format="rgb24"))
            else:
                pcm.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
        if inp.streams.audio:
            pcm.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    return frames, (np.concatenate(pcm).astype(np.float32) if pcm else None), fps


def from_afar(data: bytes, scale: float, background: int = 110) -> bytes:
    """The same recording (H.264 + AAC) filmed from farther away: every frame shrunk by ``scale`` and drawn in the
    middle of a ``background`` grey frame of the original size, the audio as it is (re-encoded)."""
    import cv2

    frames, audio, fps = decode_all(data)
    h, w = frames[0].shape[:2]
    sw, sh = max(2, int(round(w * scale))), max(2, int(round(h * scale)))
    x0, y0 = (w - sw) // 2, (h - sh) // 2

    def frame_at(i: int) -> np.ndarray:
        canvas = np.full((h, w, 3), background, np.uint8)
        canvas[y0:y0 + sh, x0:x0 + sw] = cv2.resize(frames[i], (sw, sh), interpolation=cv2.INTER_AREA)
        return canvas

    return encode_video(frame_at, len(frames), fps, audio, container="mp4")


def loop_media(sources: list, out_path, seconds: float) -> float:  # noqa: ANN001
    """Write to ``out_path`` an MP4 at least ``seconds`` long made of the ``sources`` (paths of MP4 files with the
    same codecs and settings, e.g. the bundled samples) played one after another in turn, their packets copied
    (nothing re-encoded, so an hour is written in seconds). Returns the length written, in seconds."""
    import av

    offset, i = 0.0, 0
    with av.open(str(sources[0])) as first, av.open(str(out_path), "w", format="mp4") as out:
        streams = {s.type: out.add_stream_from_template(s) for s in first.streams if s.type in ("video", "audio")}
        while offset < seconds:
            with av.open(str(sources[i % len(sources)])) as inp:
                packets = [p for p in inp.demux() if p.dts is not None and p.stream.type in streams]
                lo = min(float(p.dts * p.time_base) for p in packets)
                hi = max(float((p.dts + (p.duration or 0)) * p.time_base) for p in packets)
                if i:
                    offset -= lo  # the next copy's first packet starts where the previous one ended
                for packet in packets:
                    shift = int(round(offset / packet.time_base))
                    if packet.pts is not None:
                        packet.pts += shift
                    packet.dts += shift
                    packet.stream = streams[packet.stream.type]
                    out.mux(packet)
            offset += hi
            i += 1
    return offset
