"""Images sent to the lab: checked before anything trusts them (size in bytes and in pixels, a format Pillow reads,
not a decompression bomb), then made into what a run's network takes (its channels and size)."""

from __future__ import annotations

import base64
import contextlib
import io
import json
from pathlib import Path

import numpy as np

from ..errors import UserError

MAX_PIXELS = 4096 * 4096
"""Pixels an uploaded image may hold (Pillow's own guard stops at twice its MAX_IMAGE_PIXELS; this is stricter)."""
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM")


@contextlib.contextmanager
def _opened(data: bytes):
    """The image file ``data``, opened by Pillow once its header is found acceptable (not empty, a format in
    :data:`FORMATS`, at most :data:`MAX_PIXELS` pixels); whatever Pillow raises then, in the ``with`` body too, is a
    :class:`UserError` of one line."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise UserError("no image was sent: send the bytes of a PNG or JPEG file")
    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format not in FORMATS:
                raise UserError(f"a {im.format} image is not taken here; send {', '.join(FORMATS[:2])} or "
                                f"{', '.join(FORMATS[2:])}")
            if im.width * im.height > MAX_PIXELS:
                raise UserError(f"the image is {im.width}x{im.height} pixels; at most {MAX_PIXELS:,} pixels are "
                                "taken (a smaller image, please)")
            yield im
    except UserError:
        raise
    except UnidentifiedImageError:
        raise UserError("the file sent is not an image: Pillow recognises no image format in it (send a PNG or "
                        "JPEG)") from None
    except (Image.DecompressionBombError, OSError, ValueError, SyntaxError) as e:
        raise UserError(f"the image sent is damaged or cut short ({type(e).__name__}: "
                        f"{' '.join(str(e).split())[:120]})") from None


def check_upload(data: bytes) -> None:
    """:class:`UserError` (one line) unless ``data`` is an image file the lab takes: not empty, a format in
    :data:`FORMATS`, at most :data:`MAX_PIXELS` pixels, and whole (it decodes)."""
    with _opened(data) as im:
        im.load()


def decode_upload(data: bytes, mode: str, size: tuple[int, int]) -> np.ndarray:
    """The bytes of an image file, checked as :func:`check_upload` checks them and decoded once, as uint8 (C, H, W)
    in Pillow ``mode`` ("L" or "RGB"), resized to ``size`` (H, W)."""
    from PIL import Image

    with _opened(data) as im:
        im = im.convert(mode)
        if im.size != (size[1], size[0]):
            im = im.resize((size[1], size[0]), Image.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
    return a[None].copy() if a.ndim == 2 else np.ascontiguousarray(a.transpose(2, 0, 1))


def png_uri(pixels: np.ndarray, side: int = 0) -> str:
    """uint8 pixels (C, H, W), C 1 or 3, as a PNG data URI for a page; with ``side``, enlarged by whole pixels
    (nearest) to about ``side`` pixels so that a small image can be seen."""
    from PIL import Image

    c, h, w = pixels.shape
    factor = max(1, side // max(h, w))
    shown = pixels.repeat(factor, 1).repeat(factor, 2)
    out = io.BytesIO()
    Image.fromarray(shown[0] if c == 1 else shown.transpose(1, 2, 0)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def network_input(run: Path, data: bytes) -> dict:
    """An uploaded image as the run's network would see it: its shape and a PNG of it (a data URI, scaled up)."""
    try:
        card = json.loads((Path(run) / "model.json").read_text())
        c, h, w = card["input_shape"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"{Path(run).name} has no network that takes images (no model.json with an input "
                        "shape)") from None
    return {"shape": [c, h, w], "png": png_uri(decode_upload(data, "L" if c == 1 else "RGB", (h, w)), 128)}


__all__ = ["FORMATS", "MAX_PIXELS", "check_upload", "decode_upload", "network_input", "png_uri"]
