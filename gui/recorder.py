"""Clips of the window: grab frames (QImage -> RGB array) and encode them to .mp4 or .gif.

The encoder is PyAV (FFmpeg inside its wheel, chosen by benchmarks/bench_encoders.py: as fast as
imageio-ffmpeg, in process, and the same library decodes clips in the tests). GIFs are written by
Pillow with one optimised palette per frame.
"""

from __future__ import annotations

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
    """Write RGB frames to ``path`` (.mp4: H.264 yuv420p; .gif: Pillow, optimised palette).

    The first frame fixes the size; later frames of another size are resized to it.
    Use as a context manager or call ``close()``; ``frames`` counts the frames written.
    """

    def __init__(self, path: str, fps: int = 30) -> None:
        self.path = path
        self.fps = fps
        self.kind = clip_format(path)
        self.frames = 0
        self._size: tuple[int, int] | None = None  # (w, h)
        self._gif: list = []
        self._container = None
        self._stream = None
        if self.kind == "mp4":
            try:
                import av
            except ImportError:
                raise RecordError(
                    "recording .mp4 needs PyAV (pip install av); it is in batchscope's dependencies"
                ) from None
            self._av = av
            try:
                self._container = av.open(path, "w")
                self._stream = self._container.add_stream("libx264", rate=fps)
            except Exception as e:  # av.FFmpegError, OSError ...
                raise RecordError(f"cannot record to {path}: {e}") from None
            self._stream.pix_fmt = "yuv420p"
        else:
            try:
                import PIL.Image  # noqa: F401
            except ImportError:
                raise RecordError("recording .gif needs Pillow (pip install pillow)") from None

    def add(self, frame: np.ndarray) -> None:
        """Append one frame: (H, W, 3) uint8 RGB."""
        from PIL import Image

        if self._size is None:
            h, w = frame.shape[:2]
            if self.kind == "gif" and max(w, h) > GIF_MAX_SIDE:
                s = GIF_MAX_SIDE / max(w, h)
                w, h = round(w * s), round(h * s)
            w, h = w - w % 2, h - h % 2
            self._size = (w, h)
            if self._stream is not None:
                self._stream.width, self._stream.height = w, h
        w, h = self._size
        if frame.shape[:2] != (h, w):
            if frame.shape[0] >= h and frame.shape[1] >= w and self.kind == "mp4":
                frame = _even(frame)[:h, :w]
            if frame.shape[:2] != (h, w):
                frame = np.asarray(Image.fromarray(frame).resize((w, h), Image.Resampling.LANCZOS))
        if self.kind == "gif":
            # one palette from the first frame: unchanged pixels keep their index, so each
            # frame stores only what moved (per-frame palettes made 10 s ~30 MB)
            img = Image.fromarray(frame)
            if not self._gif:
                self._gif.append(img.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
            else:
                self._gif.append(img.quantize(palette=self._gif[0], dither=Image.Dither.NONE))
        else:
            vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            try:
                for p in self._stream.encode(vf):
                    self._container.mux(p)
            except Exception as e:
                raise RecordError(f"encoding {self.path} failed: {e}") from None
        self.frames += 1

    def add_image(self, image: QImage) -> None:
        """Append a QImage (e.g. ``widget.grab().toImage()``)."""
        self.add(qimage_to_rgb(image))

    def close(self) -> None:
        """Finish the file (flush the encoder / write the GIF)."""
        try:
            if self.kind == "mp4" and self._container is not None:
                if self.frames:
                    for p in self._stream.encode():
                        self._container.mux(p)
                self._container.close()
                self._container = None
            elif self.kind == "gif" and self._gif:
                first, *rest = self._gif
                first.save(
                    self.path,
                    save_all=True,
                    append_images=rest,
                    duration=round(1000 / self.fps),
                    loop=0,
                    optimize=True,
                )
                self._gif = []
        except Exception as e:
            raise RecordError(f"cannot finish {self.path}: {e}") from None

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
            window._on_snapshot(snap)
            window._redraw()
            app.processEvents()
            clip.add_image(window.grab().toImage())
            if session.diverged:
                ok = False
                break
    return ok
