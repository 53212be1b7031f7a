"""Images through Pillow: PNG and JPEG, as the labeling and data-prep code read them."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from airflow_dl_provider.manifests.images import decode_gray, encode_png_gray

GRADIENT = [[(r * 8 + c) * 4 for c in range(8)] for r in range(8)]


def _saved(array: np.ndarray, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_png_round_trips_exactly() -> None:
    data = encode_png_gray(GRADIENT)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert (decode_gray(data) * 255).round().astype(int).tolist() == GRADIENT


def test_jpeg_reads_as_the_image_it_encodes() -> None:
    gray = np.asarray(GRADIENT, dtype=np.uint8).repeat(4, axis=0).repeat(4, axis=1)  # 32 x 32
    decoded = decode_gray(_saved(gray, "JPEG", quality=95))
    assert decoded.shape == (32, 32)
    # Lossy, but close: every pixel within a few levels of what was written.
    assert np.abs(decoded * 255 - gray).max() < 6


def test_colour_becomes_luma_and_alpha_is_dropped() -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7  # pure red, nearly transparent
    expected = Image.fromarray(rgba[..., :3]).convert("L").getpixel((0, 0)) / 255
    assert decode_gray(_saved(rgba, "PNG")) == pytest.approx(np.full((2, 3), expected))
    assert expected == pytest.approx(200 * 0.299 / 255, abs=1 / 255)


def test_sixteen_bit_png_is_scaled_by_its_own_range() -> None:
    wide = np.array([0, 32768, 65535], dtype=np.uint16).reshape(1, 3)
    assert decode_gray(_saved(wide, "PNG"))[0].tolist() == pytest.approx([0.0, 32768 / 65535, 1.0])


def test_exif_orientation_is_applied() -> None:
    tall = np.zeros((4, 2), dtype=np.uint8)
    tall[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    decoded = decode_gray(_saved(tall, "JPEG", exif=exif, quality=100))
    assert decoded.shape == (2, 4)
    assert decoded[0, -1] > 0.8 and decoded[-1, 0] < 0.2


def test_bytes_that_are_no_image_say_so() -> None:
    with pytest.raises(ValueError, match=r"not an image Pillow can read \(PNG, JPEG"):
        decode_gray(b"label,p0\n1,2\n")
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    whole = _saved(noise, "PNG")
    with pytest.raises(ValueError, match="a damaged image"):
        decode_gray(whole[: len(whole) // 2])
