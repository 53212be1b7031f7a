"""Grayscale PNG images without an imaging library: the demo writes them, labeling and data prep read them."""

from __future__ import annotations

import struct
import zlib

import numpy as np

_PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}


def encode_png_gray(pixels: list[list[int]]) -> bytes:
    """A grayscale 8-bit PNG of ``pixels`` (rows of 0..255), with the standard library alone."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    height, width = len(pixels), len(pixels[0])
    raw = b"".join(b"\x00" + bytes(row) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _unfilter(raw: bytes, width: int, height: int, bpp: int) -> bytearray:
    """Undo PNG's per-row filters (None, Sub, Up, Average, Paeth)."""
    stride = width * bpp
    out = bytearray(stride * height)
    prev = bytearray(stride)
    pos = 0
    for row in range(height):
        kind = raw[pos]
        line = bytearray(raw[pos + 1 : pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up = prev[i]
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + ((left + up) >> 1)) & 0xFF
            elif kind == 4:
                corner = prev[i - bpp] if i >= bpp else 0
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + pred) & 0xFF
        out[row * stride : (row + 1) * stride] = line
        prev = line
    return out


def decode_png_gray(data: bytes) -> np.ndarray:
    """An 8-bit PNG (gray, RGB, with or without alpha; not interlaced) as a 2-D gray array in 0..1."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError("PNG has no IHDR chunk")
    width, height, depth, color, _compression, _filter, interlace = header
    if depth != 8 or color not in _PNG_CHANNELS or interlace:
        raise ValueError(f"PNG bit depth {depth}, color type {color}, interlace {interlace} is not supported")
    channels = _PNG_CHANNELS[color]
    pixels = _unfilter(zlib.decompress(b"".join(idat)), width, height, channels)
    image = np.frombuffer(bytes(pixels), dtype=np.uint8).reshape(height, width, channels).astype(float)
    gray = image[..., :3].mean(axis=2) if channels >= 3 else image[..., 0]
    return gray / 255.0
