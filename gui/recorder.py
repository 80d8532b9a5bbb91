"""Clips of the window: grab frames (QImage -> RGB array) and encode them to .mp4 or .gif.

The encoder is PyAV (FFmpeg inside its wheel, chosen by benchmarks/bench_encoders.py: as fast as
imageio-ffmpeg, in process, and the same library decodes clips in the tests). GIFs are written by
Pillow with one palette, taken from the first frame.

Frames are (H, W, 3) RGB or (H, W, 4) BGRA uint8 arrays (BGRA is how a grabbed QImage lies in
memory: no conversion on the window's thread). ``BackgroundClip`` encodes in a thread of its
own, so a window that records stays responsive (PyAV and Pillow release the GIL while they
encode).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage

#: clip file extension -> container written
CLIP_FORMATS = {".mp4": "mp4", ".gif": "gif"}
#: a GIF's longest side by default: 10 s at 30 fps of the window stays under ~10 MB
GIF_MAX_SIDE = 640


class RecordError(Exception):
    """A clip cannot be written; the message is one line for the user."""


def clip_format(path: str) -> str:
    """``"mp4"`` or ``"gif"`` from ``path``'s extension; RecordError otherwise."""
    ext = Path(path).suffix.lower()
    if ext not in CLIP_FORMATS:
        raise RecordError(
            f"{Path(path).name}: name a .mp4 or .gif file (the extension sets the format)"
        )
    return CLIP_FORMATS[ext]


def qimage_to_bgra(image: QImage) -> np.ndarray:
    """The pixels of ``image`` as a (H, W, 4) uint8 array in memory order B, G, R, A (a copy;
    no conversion for the RGB32/ARGB32 images ``QWidget.grab`` gives)."""
    ok = (QImage.Format.Format_RGB32, QImage.Format.Format_ARGB32_Premultiplied)
    img = image if image.format() in ok else image.convertToFormat(QImage.Format.Format_RGB32)
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    out = np.array(buf[:, : 4 * w].reshape(h, w, 4), order="C", copy=True)
    if sys.byteorder == "big":  # 0xAARRGGBB words lie A, R, G, B in memory
        out = np.ascontiguousarray(out[..., ::-1])
    return out


def bgra_to_rgb(frame: np.ndarray) -> np.ndarray:
    """(H, W, 4) BGRA -> (H, W, 3) RGB, C-contiguous."""
    return np.ascontiguousarray(frame[..., 2::-1])


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """The pixels of ``image`` as a (H, W, 3) uint8 C-contiguous array (a copy)."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = img.height(), img.width(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    # a copy always: the QImage converted here (and its pixels) is freed on return
    return np.array(buf[:, : 3 * w].reshape(h, w, 3), order="C", copy=True)


def _even(frame: np.ndarray) -> np.ndarray:
    """Crop a (H, W, 3) frame to even H and W (yuv420p needs them)."""
    h, w = frame.shape[:2]
    return frame[: h - h % 2, : w - w % 2]


class ClipWriter:
    """Write frames to ``path`` (.mp4: H.264 yuv420p; .gif: Pillow, one shared palette).

    The first frame fixes the size; later frames of another size are cropped or resized to
    it. ``add(frame, pts)`` places a frame at ``pts`` frame periods from the start (frames
    then last until the next one: a clip recorded in real time stays in real time when a
    frame comes late); without ``pts`` frames follow each other. ``preset``: x264's speed
    preset (``"veryfast"`` spends a fifth of the default's time for a slightly larger file).
    Use as a context manager or call ``close()``; ``frames`` counts the frames written.
    """

    def __init__(
        self, path: str, fps: int = 30, preset: str | None = None, threads: int = 0
    ) -> None:
        self.path = path
        self.fps = fps
        self.kind = clip_format(path)
        self.frames = 0
        self._size: tuple[int, int] | None = None  # (w, h)
        self._gif: list = []
        self._gif_pts: list[int] = []
        self._last_pts = -1
        self._container = None
        self._stream = None
        _check_writable(path)
        if self.kind == "mp4":
            self._open_mp4(preset, threads)
        else:
            try:
                import PIL.Image  # noqa: F401
            except ImportError:
                raise RecordError("recording .gif needs Pillow (pip install pillow)") from None

    def _open_mp4(self, preset: str | None, threads: int) -> None:
        try:
            import av
        except ImportError:
            raise RecordError(
                "recording .mp4 needs PyAV (pip install av); it is in batchscope's dependencies"
            ) from None
        self._av = av
        try:
            self._container = av.open(self.path, "w")
            self._stream = self._container.add_stream("libx264", rate=self.fps)
        except Exception as e:  # av.FFmpegError, OSError ...
            raise RecordError(f"cannot record to {self.path}: {_why(e)}") from None
        self._stream.pix_fmt = "yuv420p"
        self._stream.codec_context.time_base = Fraction(1, self.fps)
        options = {"preset": preset} if preset else {}
        if threads:
            options["threads"] = str(threads)
        self._stream.options = options

    def _fix_size(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self.kind == "gif" and max(w, h) > GIF_MAX_SIDE:
            s = GIF_MAX_SIDE / max(w, h)
            w, h = round(w * s), round(h * s)
        w, h = w - w % 2, h - h % 2
        if w < 2 or h < 2:
            raise RecordError(f"{Path(self.path).name}: a frame of {w} x {h} pixels is too small")
        self._size = (w, h)
        if self._stream is not None:
            self._stream.width, self._stream.height = w, h

    def _fit(self, frame: np.ndarray) -> np.ndarray:
        """``frame`` at the clip's size: cropped to even sides, else resized."""
        from PIL import Image

        w, h = self._size
        if frame.shape[:2] == (h, w):
            return frame
        extra_h, extra_w = frame.shape[0] - h, frame.shape[1] - w
        if 0 <= extra_h <= 1 and 0 <= extra_w <= 1:  # an odd side cropped to even
            return frame[:h, :w]
        rgb = bgra_to_rgb(frame) if frame.shape[2] == 4 else frame
        return np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))

    def add(self, frame: np.ndarray, pts: int | None = None) -> None:
        """Append one frame: (H, W, 3) RGB or (H, W, 4) BGRA uint8, at frame ``pts`` (later
        than the last; default: the next)."""
        pts = self._last_pts + 1 if pts is None else max(int(pts), self._last_pts + 1)
        if self._size is None:
            self._fix_size(frame)
        frame = np.ascontiguousarray(self._fit(frame))
        if self.kind == "gif":
            self._add_gif(frame, pts)
        else:
            fmt = "bgra" if frame.shape[2] == 4 else "rgb24"
            vf = self._av.VideoFrame.from_ndarray(frame, format=fmt)
            vf.pts = pts
            vf.time_base = Fraction(1, self.fps)
            try:
                for p in self._stream.encode(vf):
                    self._container.mux(p)
            except Exception as e:
                raise RecordError(f"encoding {self.path} failed: {_why(e)}") from None
        self._last_pts = pts
        self.frames += 1

    def _add_gif(self, frame: np.ndarray, pts: int) -> None:
        from PIL import Image

        # one palette from the first frame: unchanged pixels keep their index, so each
        # frame stores only what moved (per-frame palettes made 10 s ~30 MB)
        img = Image.fromarray(bgra_to_rgb(frame) if frame.shape[2] == 4 else frame)
        if not self._gif:
            self._gif.append(img.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
        else:
            self._gif.append(img.quantize(palette=self._gif[0], dither=Image.Dither.NONE))
        self._gif_pts.append(pts)

    def add_image(self, image: QImage) -> None:
        """Append a QImage (e.g. ``widget.grab().toImage()``)."""
        self.add(qimage_to_bgra(image))

    def size_bytes(self) -> int:
        """The clip's size on disk so far (a GIF is written at ``close``: 0 until then)."""
        try:
            return os.path.getsize(self.path)
        except OSError:
            return 0

    def close(self) -> None:
        """Finish the file (flush the encoder / write the GIF)."""
        try:
            if self.kind == "mp4" and self._container is not None:
                container, self._container = self._container, None
                if self.frames:
                    for p in self._stream.encode():
                        container.mux(p)
                container.close()
            elif self.kind == "gif" and self._gif:
                self._save_gif()
        except Exception as e:
            raise RecordError(f"cannot finish {self.path}: {_why(e)}") from None

    def _save_gif(self) -> None:
        # each frame lasts until the next one's time (the last: one period)
        ticks = [*self._gif_pts, self._gif_pts[-1] + 1]
        period = 1000 / self.fps
        durations = [max(20, round((b - a) * period)) for a, b in zip(ticks, ticks[1:])]
        first, *rest = self._gif
        self._gif, self._gif_pts = [], []
        first.save(
            self.path,
            save_all=True,
            append_images=rest,
            duration=durations if len(set(durations)) > 1 else durations[0],
            loop=0,
            optimize=True,
        )

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _check_writable(path: str) -> None:
    """RecordError now, not at the first frame, if ``path`` cannot be written (FFmpeg opens
    the file lazily)."""
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise RecordError(f"cannot record to {path}: {_why(e)}") from None


def _why(e: BaseException) -> str:
    """One line for the user from an encoder's or the file system's exception."""
    text = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(str(text).split())


class BackgroundClip:
    """A ClipWriter fed from the window's thread and encoding in a thread of its own.

    ``put(frame, pts)`` never waits: when the encoder falls ``max_queue`` frames behind, the
    frame is dropped (``dropped`` counts them; the clip holds the previous frame longer).
    The first error stops the encoding; ``error`` holds its one-line message and ``close()``
    raises it as a RecordError.
    """

    def __init__(self, path: str, fps: int = 30, max_queue: int = 8, **writer_kw) -> None:
        self.writer = ClipWriter(path, fps, **writer_kw)  # RecordError here: nothing started
        self.path = path
        self.dropped = 0
        self.error: str | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="clip-encoder", daemon=True)
        self._thread.start()

    @property
    def frames(self) -> int:
        return self.writer.frames

    def put(self, frame: np.ndarray, pts: int | None = None) -> bool:
        """Queue a frame for encoding; False if it was dropped (encoder behind or failed)."""
        if self.error is not None:
            return False
        try:
            self._queue.put_nowait((frame, pts))
        except queue.Full:
            self.dropped += 1
            return False
        return True

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                break
            if self.error is not None:
                continue
            try:
                self.writer.add(*item)
            except RecordError as e:
                self.error = str(e)
            except Exception as e:  # noqa: BLE001 - said to the user in one line
                self.error = f"encoding {self.path} failed: {_why(e)}"
        try:
            self.writer.close()
        except RecordError as e:
            self.error = self.error or str(e)

    def finish(self) -> None:
        """Ask the encoder to finish the file after the frames queued (returns at once)."""
        while True:
            try:
                self._queue.put(None, timeout=0.05)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    return

    def done(self) -> bool:
        """True once the file is finished (or failed)."""
        return not self._thread.is_alive()

    def close(self, timeout: float | None = None) -> None:
        """Finish the file and wait for it; RecordError if anything failed."""
        self.finish()
        self._thread.join(timeout)
        if self.error is not None:
            raise RecordError(self.error)


def record_training(app, window, session, steps: int, path: str, fps: int = 30) -> bool:
    """Train ``session`` for ``steps`` steps in this thread, drawing ``window`` every few steps
    and appending its grab to a clip at ``path``; False if the run diverged (the clip is
    finished either way). Raises RecordError.

    The steps are spread over ``clamp(steps / 5, 1, 10 * fps)`` frames: one frame every five
    steps, at most ten seconds of clip.
    """
    n_frames = max(1, min(steps // 5 if steps >= 5 else 1, 10 * fps))
    ok = True
    with ClipWriter(path, fps) as clip:
        done = 0
        for f in range(n_frames):
            target = round(steps * (f + 1) / n_frames)
            while done < target - 1 and not session.diverged:
                session.step(detail=False)
                done += 1
            snap = session.step() if not session.diverged else session.snapshot()
            done += 1
            if session.needs_surface():
                session.compute_surface()
                snap = session.snapshot()
            window.draw_now(snap)
            app.processEvents()
            clip.add_image(window.grab().toImage())
            if session.diverged:
                ok = False
                break
    return ok
