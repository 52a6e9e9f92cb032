"""Bad input for the clip path (issue 4, "Limits and bad input"): every case with the message the user sees.

Inputs are made in memory from the committed demo assets (assets/clips/); nothing from ../shared/data.
"""
from __future__ import annotations

import io
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from crossemo_core.clip import synth
from crossemo_core.clip.decode import ClipLimits, NamedBytes, decode_media, sniff
from crossemo_core.errors import DataError
from crossemo_core.features.voice import remove_dc

REPO = Path(__file__).resolve().parent.parent
ASSETS = REPO / "assets" / "clips"
SAMPLE = ASSETS / "smile_upbeat.mp4"
VOICE = ASSETS / "voice_upbeat.wav"
PHOTO = ASSETS / "face_photo.jpg"

pytest.importorskip("av", reason="PyAV is needed for the clip path (requirements.txt)")


def _photo() -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(PHOTO).convert("RGB"))


def _voice() -> np.ndarray:
    import soundfile as sf

    audio, sr = sf.read(VOICE, dtype="float32")
    assert sr == synth.AUDIO_RATE
    return audio


def _video(audio: np.ndarray | None, faces: int = 1, seconds: float = 3.0, fps: int = 25, face: bool = True) -> bytes:
    img = _photo()
    n = int(seconds * fps)

    def frame(i: int) -> np.ndarray:
        canvas = synth.place((360, 640), img, 260, 200 + 2 * np.sin(i / 7), 180) if face else \
            np.full((360, 640, 3), 90, np.uint8)
        if faces > 1:  # a second, smaller face on the right
            canvas[100:270, 440:610] = synth.place((170, 170), img, 170, 85, 85)
        return canvas

    return synth.encode_video(frame, n, fps, None if audio is None else audio[: int(seconds * synth.AUDIO_RATE)])


# ------------------------------------------------------------------------------------------------ decode level
def test_sniff_recognises_formats() -> None:
    assert sniff(SAMPLE.read_bytes()[:64]) == "mp4"
    assert sniff(VOICE.read_bytes()[:64]) == "wav"
    assert sniff(PHOTO.read_bytes()[:64]) == "jpeg"
    assert sniff(b"hello world, not media" * 3) is None


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3", "ogg", "m4a"])
def test_audio_formats_decode(fmt: str) -> None:
    audio = _voice()[:16000]
    media = decode_media(NamedBytes(f"v.{fmt}", synth.encode_audio(audio, fmt=fmt)), want_video=False)
    assert media.has_audio and not media.has_video
    assert abs(len(media.audio) / 16000 - 1.0) < 0.1
    assert media.notes == []


def test_audio_sampled_too_slowly_for_speech_is_refused() -> None:
    """A WAV that says it was sampled at 1 Hz was stretched to hours of near-constant signal and got a verdict."""
    import soundfile as sf

    for rate, refused in ((1, True), (1000, True), (8000, False)):
        buf = io.BytesIO()
        sf.write(buf, np.zeros(max(rate, 30), np.float32), rate, format="WAV", subtype="FLOAT")
        if refused:
            with pytest.raises(DataError, match=f"^slow.wav: its audio is sampled at {rate} Hz; a voice needs at "
                                                f"least 4,000 Hz"):
                decode_media(NamedBytes("slow.wav", buf.getvalue()), want_video=False)
        else:
            assert len(decode_media(NamedBytes("slow.wav", buf.getvalue()), want_video=False).audio) == 16000


def test_a_video_whose_audio_is_too_slow_for_speech_keeps_its_face() -> None:
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = out.add_stream("pcm_s16le", rate=1000)
        audio.layout = "mono"
        for _ in range(25):
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")))
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 1000), np.int16), format="s16", layout="mono")
        samples.sample_rate = 1000
        out.mux(audio.encode(samples))
        out.mux(audio.encode(None))
        out.mux(video.encode(None))
    media = decode_media(NamedBytes("slow.mkv", buf.getvalue()), on_frame=lambda t, rgb: None)
    assert media.n_frames > 0 and not media.has_audio and media.audio is None
    assert media.notes == ["slow.mkv: its audio is sampled at 1000 Hz; a voice needs at least 4,000 Hz (a "
                           "telephone's 8,000 Hz is enough), so it is not a recording of speech; the audio track "
                           "was left out."]
    with pytest.raises(DataError, match="^slow.mkv: its audio is sampled at 1000 Hz"):
        decode_media(NamedBytes("slow.mkv", buf.getvalue()), need_audio=True)


def test_damaged_audio_samples_are_repaired_and_said() -> None:
    """A float WAV may hold NaN, infinite or absurd samples: read as silence, or clipped to full scale, with a note
    (they went on to the features before: warnings, and a verdict on them)."""
    import soundfile as sf

    audio = _voice()[:32000].astype(np.float32)
    audio[:4000] = np.nan
    audio[4000:4100] = np.inf
    audio[8000:9000] = 1e30
    buf = io.BytesIO()
    sf.write(buf, audio, 16000, subtype="FLOAT", format="WAV")
    media = decode_media(NamedBytes("damaged.wav", buf.getvalue()), want_video=False)
    assert media.notes == ["damaged.wav: 4,100 audio samples were NaN or infinite (damaged) and were read as silence.",
                           "damaged.wav: 1,000 audio samples lay more than 8 times beyond full scale (damaged, or not "
                           "audio); that audio was clipped to full scale."]
    repaired = audio.copy()
    repaired[:4100], repaired[8000:9000] = 0.0, 1.0
    assert (media.audio[:4100] == 0).all()
    np.testing.assert_allclose(media.audio, remove_dc(repaired, 16000), atol=1e-5)  # the rest as it was


def test_clipped_audio_gets_a_note_and_a_loud_clean_recording_does_not() -> None:
    """A recording made too loud is distorted; 0.4 % of samples clipped changed the voice's top valence in 3 of 30
    RAVDESS takes, so the verdict says so instead of reading it as if it were clean."""
    import soundfile as sf

    audio = _voice()[:32000].astype(np.float32)
    audio /= np.abs(audio).max()

    def notes(signal: np.ndarray) -> list[str]:
        buf = io.BytesIO()
        sf.write(buf, signal, 16000, format="WAV", subtype="PCM_16")
        return decode_media(NamedBytes("loud.wav", buf.getvalue()), want_video=False).notes

    assert notes(audio * 0.999) == []  # peak-normalised: a few samples at full scale are not clipping
    driven = np.clip(audio * 4, -1, 1)
    share = np.mean(np.abs(driven) >= 0.99)
    assert share > 0.01
    assert notes(driven) == [f"loud.wav: its sound is clipped (at full scale) in {share:.1%} of its samples: it was "
                             f"recorded too loud and is distorted, which can change the voice's reading (record at a "
                             f"lower input level)."]


@pytest.mark.parametrize("fmt", ["wav", "flac", "m4a", "ogg"])
def test_a_constant_offset_in_the_audio_is_removed(fmt: str) -> None:
    """Cheap recorders add a DC offset; it moved the voice features of quiet frames and with them the reading. AAC
    and Opus decoders hand out first blocks of 200-325 samples: the blocker waits for its 64 ms before it starts."""
    audio = 0.5 * _voice()[:32000].astype(np.float32)

    def decoded(offset: float) -> np.ndarray:
        data = synth.encode_audio(audio + offset, fmt=fmt)
        return decode_media(NamedBytes(f"v.{fmt}", data), want_video=False).audio

    clean = decoded(0.0)
    for offset in (0.02, -0.05):
        moved = decoded(offset) - clean
        if fmt in ("wav", "flac"):  # lossless: the same samples
            np.testing.assert_allclose(moved, 0.0, atol=1e-4)
        else:  # lossy codecs start from silence and pad with it, so the offset steps in and out at the ends
            middle = moved[3200:len(audio) - 3200]
            assert abs(middle.mean()) < 0.01 * abs(offset) and np.percentile(np.abs(middle), 95) < 0.2 * abs(offset)
    if fmt == "wav":
        assert np.abs(clean - audio).max() > 1e-4  # the blocker did run ...
        np.testing.assert_allclose(clean, remove_dc(audio, 16000), atol=1e-4)  # ... and removed only the offset


@pytest.mark.parametrize("container", ["mp4", "webm", "mkv", "avi"])
def test_video_formats_decode(container: str) -> None:
    data = synth.encode_video(lambda i: synth.place((240, 320), _photo(), 150, 160, 120), 25, 25,
                              _voice()[:16000], container=container)
    frames = []
    media = decode_media(NamedBytes(f"clip.{container}", data), on_frame=lambda t, rgb: frames.append(t))
    assert media.has_video and media.has_audio
    assert 9 <= len(frames) <= 11  # 1 s sampled at 10 fps
    assert media.audio is not None and len(media.audio) > 12000


def _gradient_video(width: int, height: int, pix_fmt: str, n: int = 3, colorspace: int | None = None,
                    color_range: int | None = None) -> bytes:
    import av

    y, x = np.mgrid[0:height, 0:width]
    img = np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin(x / 30.0)], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="matroska") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        vs.options = {"preset": "veryfast", "crf": "18"}
        if colorspace is not None:
            vs.codec_context.colorspace = colorspace
        if color_range is not None:
            vs.codec_context.color_range = color_range
        for _ in range(n):
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize("width, height, pix_fmt, max_side, colorspace, color_range, fast", [
    (320, 240, "yuv420p", 640, None, None, True),  # untagged: BT.601, video range
    (320, 240, "yuv420p", 640, 1, None, True),  # tagged BT.709 (most HD phone and webcam video)
    (320, 240, "yuv420p", 640, None, 2, True),  # full range flagged on a yuv420p stream
    (1280, 720, "yuv420p", 640, 1, None, True),  # scaled down
    (322, 242, "yuv420p", 640, None, None, True),  # rows padded in memory
    (320, 240, "yuv444p", 640, None, None, False),  # other layouts: ffmpeg's own conversion
    (320, 240, "yuv420p", 640, 9, None, False),  # a colour matrix not converted here (BT.2020)
])
def test_frames_reach_the_readers_as_ffmpeg_would_convert_them(width: int, height: int, pix_fmt: str, max_side: int,
                                                               colorspace: int | None, color_range: int | None,
                                                               fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """8-bit 4:2:0 frames are converted by OpenCV with the frame's colour matrix and range (much faster than
    swscale), the rest by ffmpeg: the same picture either way."""
    import av
    import cv2

    calls: list[int] = []
    transform = cv2.transform
    monkeypatch.setattr(cv2, "transform", lambda *a, **k: calls.append(1) or transform(*a, **k))
    data = _gradient_video(width, height, pix_fmt, colorspace=colorspace, color_range=color_range)
    frames: list[np.ndarray] = []
    decode_media(NamedBytes("g.mkv", data), limits=replace(ClipLimits(), max_frame_side=max_side),
                 on_frame=lambda t, rgb: frames.append(rgb))
    with av.open(io.BytesIO(data)) as container:
        frame = next(container.decode(video=0))
        scale = min(1.0, max_side / max(width, height))
        reference = frame.to_ndarray(format="rgb24", width=int(width * scale), height=int(height * scale))
    assert frames and frames[0].shape == reference.shape and frames[0].dtype == np.uint8
    assert bool(calls) == fast
    difference = np.abs(frames[0].astype(int) - reference)
    assert difference.mean() < 3 and np.percentile(difference, 99) < 12


def _bframe_video(n: int = 25, fps: int = 25) -> bytes:
    """H.264 with 3 non-reference B-frames between reference frames: 3 of every 4 frames are non-reference."""
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 160, 120, "yuv420p"
        vs.options = {"preset": "veryfast", "x264-params": "bframes=3:b-pyramid=none:b-adapt=0:scenecut=0"}
        for i in range(n):
            img = np.full((120, 160, 3), 80, np.uint8)
            img[40:80, (4 * i) % 120:(4 * i) % 120 + 40] = 200
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
    return buf.getvalue()


def test_video_sampling_with_many_b_frames() -> None:
    """Regression: skipping non-reference frames left ~6 of the 10 frames a 1 s clip should give at 10 fps."""
    frames: list[float] = []
    decode_media(NamedBytes("b.mp4", _bframe_video()), on_frame=lambda t, rgb: frames.append(t))
    assert ClipLimits().fps == 10.0
    assert len(frames) == 10
    assert np.all(np.diff(frames) <= 0.1 + 0.04 + 1e-6)  # never more than one source frame late


def test_zero_length_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.mp4 is empty \(0 bytes\)"):
        decode_media(empty)
    with pytest.raises(DataError, match=r"upload\.wav is empty \(0 bytes\)"):
        decode_media(NamedBytes("upload.wav", b""))


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        decode_media(tmp_path / "nothing.mp4")
    with pytest.raises(DataError, match="is a folder, not a file"):
        decode_media(tmp_path)


def test_size_cap() -> None:
    limits = replace(ClipLimits(), max_bytes=50_000)
    with pytest.raises(DataError, match=r"smile_upbeat\.mp4 is 0\.091 MB; the limit is 0\.05 MB \(change it with "
                                        r"--max-mb or CROSSEMO_CLIP_MAX_MB\)"):
        decode_media(SAMPLE, limits=limits)


def test_size_cap_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROSSEMO_CLIP_MAX_MB", "0.01")
    with pytest.raises(DataError, match="the limit is 0.01 MB"):
        decode_media(SAMPLE)


def test_duration_cap() -> None:
    limits = replace(ClipLimits(), max_duration_s=2.0)
    with pytest.raises(DataError, match=r"smile_upbeat\.mp4 lasts 6 s; the limit is 2 s \(cut the clip, or change "
                                        r"the limit with --max-seconds"):
        decode_media(SAMPLE, limits=limits)


def test_corrupt_file() -> None:
    junk = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    with pytest.raises(DataError, match=r"clip\.mp4 is not a readable video file: its content matches no video, "
                                        r"audio or image format"):
        decode_media(NamedBytes("clip.mp4", junk))
    with pytest.raises(DataError, match=r"notes\.txt is not a video, audio or image file that crossemo \(ffmpeg\) "
                                        r"can read"):
        decode_media(NamedBytes("notes.txt", b"just some text, nothing else here"))


def test_corrupt_inside_a_valid_header() -> None:
    data = bytearray(SAMPLE.read_bytes())
    data[64:] = bytes(len(data) - 64)  # header kept, everything after it zeroed
    with pytest.raises(DataError, match=r"smile_upbeat\.mp4 (cannot be opened as MP4/QuickTime: the file is damaged "
                                        r"or truncated|is damaged or truncated)"):
        decode_media(NamedBytes("smile_upbeat.mp4", bytes(data)))


def test_truncated_video() -> None:
    data = SAMPLE.read_bytes()
    with pytest.raises(DataError, match=r"cut\.mp4 cannot be opened as MP4/QuickTime: the file is damaged or "
                                        r"truncated \(ffmpeg: "):
        decode_media(NamedBytes("cut.mp4", data[: len(data) // 2]))


def test_truncated_audio_is_analysed_with_a_note() -> None:
    data = VOICE.read_bytes()
    media = decode_media(NamedBytes("cut.wav", data[: len(data) // 2]), want_video=False)
    assert media.audio is not None and len(media.audio) > 0
    assert any("cut.wav looks truncated: its header declares 197,672 bytes but the file has 98,836" in n
               for n in media.notes), media.notes


def test_extension_that_lies_is_read_by_content() -> None:
    media = decode_media(NamedBytes("voice.mp4", VOICE.read_bytes()))
    assert media.has_audio and not media.has_video
    assert media.notes[0] == ("voice.mp4: the extension says .mp4 but the content is WAV audio; it was read as "
                              "WAV audio.")
    media = decode_media(NamedBytes("clip.wav", SAMPLE.read_bytes()), on_frame=lambda t, rgb: None)
    assert media.has_video and "the content is MP4/QuickTime" in media.notes[0]


def test_gif_is_refused_with_the_supported_list() -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_photo()).save(buf, format="GIF")
    with pytest.raises(DataError, match=r"face\.gif is a GIF image; crossemo reads still images as jpg, jpeg, png"):
        decode_media(NamedBytes("face.gif", buf.getvalue()))


def test_no_audio_track_when_one_is_needed() -> None:
    silent_video = _video(None, seconds=1.0)
    with pytest.raises(DataError, match=r"mute\.mp4 has no audio track, so there is no voice to read\. Give the voice "
                                        r"as a separate recording \(score mute\.mp4 --voice VOICE_FILE\)\."):
        decode_media(NamedBytes("mute.mp4", silent_video), need_audio=True)


def test_no_video_track_when_one_is_needed() -> None:
    with pytest.raises(DataError, match=r"voice_upbeat\.wav has no video track, so there is no face to read"):
        decode_media(VOICE, need_video=True)


def test_photo_has_no_voice() -> None:
    with pytest.raises(DataError, match=r"face_photo\.jpg is a still image, so it has no voice"):
        decode_media(PHOTO, need_audio=True)


def test_a_16_bit_grey_photo_is_read_over_its_range() -> None:
    """``convert("RGB")`` clips such a photo at 255: a 16-bit grey photo became white, and "no face was found"."""
    from PIL import Image

    grey = np.asarray(Image.open(ASSETS / "face_photo.jpg").convert("L"), dtype=np.float64)
    stored = (grey * 257).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="PNG")
    image = decode_media(NamedBytes("deep.png", buf.getvalue())).image
    assert image is not None and image.shape == (*grey.shape, 3)
    assert np.abs(image[..., 0].astype(np.float64) - grey).max() <= 1.0


def test_an_image_too_large_for_pillow_is_said_to_be_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (300, 300)).save(buf, format="PNG")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40_000)  # Pillow refuses images above twice this
    with pytest.raises(DataError, match=r"^huge.png is too large an image \(Image size \(90000 pixels\) exceeds"):
        decode_media(NamedBytes("huge.png", buf.getvalue()))


def test_decoding_writes_nothing_to_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    decode_media(NamedBytes("upload.mp4", SAMPLE.read_bytes()), on_frame=lambda t, rgb: None)
    decode_media(NamedBytes("upload.wav", VOICE.read_bytes()), want_video=False)
    assert list(tmp_path.iterdir()) == []
    assert os.getcwd() == str(tmp_path)


# ------------------------------------------------------------------------------------------------ any container
def _encode(container: str, vcodec: str | None, acodec: str | None, audio_rate: int = 16000) -> bytes:
    """One second of a moving grey picture and/or a tone, in ``container`` with PyAV's encoders."""
    import av
    from fractions import Fraction

    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        vs = out.add_stream(vcodec, rate=25) if vcodec else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = 128, 96, "yuv420p"
        aus = out.add_stream(acodec, rate=audio_rate) if acodec else None
        if aus is not None:
            aus.layout = "mono"
        for i in range(25 if vs is not None else 0):
            frame = av.VideoFrame.from_ndarray(np.full((96, 128, 3), 40 + 8 * i, np.uint8), format="rgb24")
            for packet in vs.encode(frame):
                out.mux(packet)
        if vs is not None:
            for packet in vs.encode():
                out.mux(packet)
        if aus is not None:
            pcm = (np.sin(np.arange(16000) * 2 * np.pi * 220 / 16000) * 8000).astype(np.int16)[None]
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 16000, 0, Fraction(1, 16000)
            resampler = av.AudioResampler(format=aus.codec_context.format.name, layout="mono",
                                          rate=aus.codec_context.sample_rate)
            for f in resampler.resample(frame) + resampler.resample(None):
                for packet in aus.encode(f):
                    out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
    return buf.getvalue()


ANY_CONTAINER = [("clip.flv", "flv", "flv", "mp3", 22050), ("clip.mpg", "mpeg", "mpeg1video", "mp2", 16000),
                 ("clip.mts", "mpegts", "mpeg2video", "mp2", 16000), ("clip.3gp", "3gp", "mpeg4", "aac", 16000),
                 ("clip.avi", "avi", "mpeg4", "pcm_s16le", 16000), ("voice.amr", "amr", None, "libopencore_amrnb", 8000),
                 ("voice.aac", "adts", None, "aac", 16000), ("voice.opus", "ogg", None, "libopus", 48000)]


@pytest.mark.parametrize("name,container,vcodec,acodec,rate", ANY_CONTAINER)
def test_any_container_ffmpeg_decodes_is_read_by_its_content(name: str, container: str, vcodec: str | None,
                                                             acodec: str, rate: int) -> None:
    data = _encode(container, vcodec, acodec, rate)
    frames: list[float] = []
    media = decode_media(NamedBytes(name, data), limits=replace(ClipLimits(), fps=5),
                         on_frame=lambda t, rgb: frames.append(t))
    assert media.has_audio and media.audio is not None and len(media.audio) > 0.5 * 16000
    assert media.has_video == (vcodec is not None)
    if vcodec is not None:
        assert 4 <= len(frames) <= 6
    assert not any("extension says" in n for n in media.notes), media.notes


def test_a_folder_takes_every_file_that_decodes_and_names_the_rest(tmp_path: Path) -> None:
    from crossemo_core.clip.decode import media_files

    (tmp_path / "a.flv").write_bytes(_encode("flv", "flv", "mp3", 22050))
    (tmp_path / "b.unknownext").write_bytes(_encode("mpegts", "mpeg2video", "mp2"))
    (tmp_path / "c.wav").write_bytes(VOICE.read_bytes())
    (tmp_path / "notes.txt").write_text("not media")
    (tmp_path / "empty.mp4").write_bytes(b"")
    entries = {f.name: reason for f, reason in media_files(tmp_path)}
    assert entries == {"a.flv": None, "b.unknownext": None, "c.wav": None,
                       "empty.mp4": "empty.mp4: skipped, empty (0 bytes).",
                       "notes.txt": "notes.txt: skipped, not a video, audio or image file crossemo (ffmpeg) can read."}


def test_a_lossless_remux_keeps_face_and_voice_aligned() -> None:
    """mp4 -> mkv moves the AAC priming samples (64 ms) out of the edit list: audio and frames must not shift."""
    original_frames: list[float] = []
    remuxed_frames: list[float] = []
    original = decode_media(SAMPLE, on_frame=lambda t, rgb: original_frames.append(t))
    remuxed = decode_media(NamedBytes("smile_upbeat.mkv", synth.remux(SAMPLE.read_bytes(), "matroska")),
                           on_frame=lambda t, rgb: remuxed_frames.append(t))
    assert remuxed_frames == pytest.approx(original_frames, abs=1e-3)
    n = min(len(original.audio), len(remuxed.audio))
    assert abs(len(original.audio) - len(remuxed.audio)) <= 160
    assert np.allclose(original.audio[:n], remuxed.audio[:n], atol=1e-3)


def _pictures(data: bytes) -> np.ndarray:
    import av

    with av.open(io.BytesIO(data)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def test_the_same_frames_encode_to_the_same_pictures_every_time() -> None:
    """The held-apart evaluation renders each clip's shifted copies from the same frames and measures how much the
    shift alone moves the verdict; with x264 on several threads, or libvpx's realtime deadline, the pictures differed
    from run to run (a face read 0.45 negative in one encode, 0.57 in another)."""
    rng = np.random.default_rng(3)
    face = rng.integers(0, 255, (48, 48), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(16000 * 3)).astype(np.float32)

    def clip() -> bytes:
        return synth.encode_video(lambda i: synth.place((240, 320), face, int(150 + 4 * np.sin(i / 17 + 1.0)),
                                                        160 + 6 * np.sin(i / 23 + 2.0), 120 + 4 * np.sin(i / 29),
                                                        background=110), 75, 25, audio, crf=26)

    first = clip()
    assert all(clip() == first for _ in range(4))
    webm = _pictures(synth.to_webm(first))
    assert all(np.array_equal(_pictures(synth.to_webm(first)), webm) for _ in range(2))


def test_a_recording_from_afar_shrinks_every_frame_into_a_grey_one_of_the_same_size() -> None:
    rng = np.random.default_rng(4)
    audio = (0.1 * rng.standard_normal(16000 * 2)).astype(np.float32)
    frames = [np.full((120, 160, 3), 40 * (i % 5), np.uint8) for i in range(50)]
    near = synth.encode_video(lambda i: frames[i], len(frames), 25, audio, crf=10)
    pictures, sound, fps = synth.decode_all(synth.from_afar(near, 0.5))
    assert fps == 25 and len(pictures) == 50 and pictures[0].shape == (120, 160, 3)
    assert sound is not None and abs(len(sound) - len(audio)) < 0.1 * 16000
    assert np.abs(pictures[3][:25].astype(int) - 110).max() <= 3  # the frame around the picture: grey
    assert np.abs(pictures[3][40:80, 50:110].astype(int) - 120).max() <= 3  # the picture, half size, in the middle


def test_remuxed_and_100ms_shifted_copies_of_the_sample_give_the_same_probability() -> None:
    """Issue 12.4: the bundled sample remuxed to mkv and mov, and with its sound 100 ms late or early against its
    pictures (timestamps moved, nothing re-encoded), gets P(inconsistent) within 0.05 of the original's. Before the
    clip model read each window at offsets tiling the hop and the clip's voice was read as one recording, a +-100 ms
    shift moved held-apart clips' probabilities by up to 0.16. A WebM copy has to be re-encoded (VP8 + Opus: ~32 dB
    SNR on the voice); the clip model's answer moves with the codec's noise (0.077 on this sample, measured), which
    is a sensitivity to the voice's quality, not to timing: it is held to 0.1."""
    from crossemo_core.clip.verdict import ClipScorer

    data = SAMPLE.read_bytes()
    copies = {"mkv": synth.remux(data, "matroska"), "mov": synth.remux(data, "mov"),
              "audio 100 ms late": synth.remux(data, "matroska", audio_delay_s=0.1),
              "audio 100 ms early": synth.remux(data, "matroska", audio_delay_s=-0.1), "webm": synth.to_webm(data)}
    scorer = ClipScorer()
    try:
        p = scorer.score(NamedBytes("smile_upbeat.mp4", data)).p_inconsistent
        changes = {name: abs(scorer.score(NamedBytes(f"copy.{name.split()[0]}", copy)).p_inconsistent - p)
                   for name, copy in copies.items()}
    finally:
        scorer.close()
    assert max(v for k, v in changes.items() if k != "webm") <= 0.05, changes
    assert changes["mkv"] == changes["mov"] == 0.0, changes
    assert changes["webm"] <= 0.1, changes
