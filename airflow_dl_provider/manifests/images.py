"""Images as gray pixel arrays, through Pillow: the demo writes PNGs, labeling and data prep read them.

Ground Truth image datasets are JPEG as often as PNG, so reading takes any format Pillow opens.
Pillow is imported inside the functions: a DAG file that imports an operator stays light.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Sequence

# 16-bit grayscale PNGs open as an integer mode; scale them by their own range, not 8-bit's.
_WIDE_MODES = ("I", "I;16", "I;16B", "I;16L")


def decode_gray(data: bytes) -> np.ndarray:
    """An image (PNG, JPEG or any format Pillow reads) as a 2-D gray array in 0..1.

    Colour becomes luma (ITU-R 601-2, Pillow's ``L`` mode); alpha is dropped. A JPEG's EXIF
    orientation is applied, so the array is the image as a labeling worker's browser showed it.

    :param data: the file's bytes.
    :raises ValueError: the bytes are not an image Pillow can read.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = ImageOps.exif_transpose(opened) or opened
            if image.mode in _WIDE_MODES:
                return np.asarray(image, dtype=np.float64) / 65535.0
            return np.asarray(image.convert("L"), dtype=np.float64) / 255.0
    except UnidentifiedImageError as err:
        raise ValueError("not an image Pillow can read (PNG, JPEG, ...)") from err
    except OSError as err:  # recognised but truncated or corrupt
        raise ValueError(f"a damaged image: {err}") from err


def encode_png_gray(pixels: Sequence[Sequence[int]]) -> bytes:
    """A grayscale 8-bit PNG of ``pixels`` (rows of 0..255): lossless, so pixels read back exactly."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
