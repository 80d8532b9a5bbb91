"""Encoder choice for --record: PyAV vs imageio-ffmpeg, ms per frame and clip size, one process.

Frames are synthetic 1280 x 720 RGB pictures (a moving gradient and flat panels, like the window),
H.264 yuv420p at 30 fps; both libraries bundle FFmpeg in their wheels.

Run: .venv/bin/python benchmarks/bench_encoders.py
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np


def frames(n: int, w: int = 1280, h: int = 720) -> list[np.ndarray]:
    """n frames, each (h, w, 3) uint8."""
    y, x = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        f = np.full((h, w, 3), 240, np.uint8)
        f[: h // 2, : w // 2, 0] = ((x[: h // 2, : w // 2] + 4 * i) % 256).astype(np.uint8)
        f[h // 2 :, w // 2 :, 2] = ((y[h // 2 :, w // 2 :] * 3 + i) % 256).astype(np.uint8)
        out.append(f)
    return out


def with_av(path: str, fr: list[np.ndarray]) -> None:
    import av

    with av.open(path, "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.height, s.width = fr[0].shape[:2]
        s.pix_fmt = "yuv420p"
        for f in fr:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def with_imageio(path: str, fr: list[np.ndarray]) -> None:
    import imageio_ffmpeg

    h, w = fr[0].shape[:2]
    g = imageio_ffmpeg.write_frames(path, (w, h), fps=30, codec="libx264", pix_fmt_out="yuv420p")
    g.send(None)
    for f in fr:
        g.send(f)
    g.close()


def main() -> None:
    fr = frames(90)
    d = tempfile.mkdtemp()
    print(f"{len(fr)} frames 1280x720, H.264 yuv420p")
    for name, fn in (("PyAV", with_av), ("imageio-ffmpeg", with_imageio)):
        path = os.path.join(d, name + ".mp4")
        t = time.perf_counter()
        fn(path, fr)
        ms = (time.perf_counter() - t) * 1000 / len(fr)
        print(f"{name:15s} {ms:7.2f} ms/frame  {os.path.getsize(path) / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
