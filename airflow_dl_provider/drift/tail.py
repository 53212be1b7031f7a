"""The long tail of a categorical feature: the values a baseline pooled as ``__other__``, remembered.

A baseline keeps counts for its most frequent categories only; the rest are counted together. To
still tell a value the training data had (in that tail) from one it never saw, the tail's values go
into a Bloom filter of bounded size: no false negatives (a tail value is always recognized), and a
stated rate of false positives (a new value taken for a tail value, so counted as ``__other__``).
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from numpy.typing import NDArray

#: 16 bits per value keeps false positives near 0.05%; the filter stops growing at 128 KiB.
BITS_PER_VALUE = 16
MIN_BITS = 1024
MAX_BITS = 2**20


def _positions(value: str, hashes: int, bits: int) -> list[int]:
    # Two halves of one digest make any number of hashes (Kirsch and Mitzenmacher, 2006).
    digest = hashlib.blake2b(value.encode("utf-8"), digest_size=16).digest()
    first = int.from_bytes(digest[:8], "little")
    step = int.from_bytes(digest[8:], "little") | 1
    return [(first + i * step) % bits for i in range(hashes)]


@dataclass
class TailValues:
    """A Bloom filter of the categories beyond the kept ones.

    :param bits: the filter, one bool per bit.
    :param hashes: bits set per value.
    :param values: how many values went in (for the false-positive rate).
    """

    bits: NDArray[np.bool_]
    hashes: int
    values: int

    @classmethod
    def of(cls, values: Iterable[str]) -> TailValues:
        items = list(values)
        size = min(MAX_BITS, max(MIN_BITS, 1 << math.ceil(math.log2(max(len(items), 1) * BITS_PER_VALUE))))
        hashes = max(1, min(16, round(size / max(len(items), 1) * math.log(2))))
        bits = np.zeros(size, dtype=bool)
        for value in items:
            bits[_positions(value, hashes, size)] = True
        return cls(bits=bits, hashes=hashes, values=len(items))

    def __contains__(self, value: str) -> bool:
        return bool(self.bits[_positions(value, self.hashes, self.bits.size)].all())

    @property
    def false_positive_rate(self) -> float:
        """The chance that a value never seen is taken for a tail value."""
        return (1.0 - math.exp(-self.hashes * self.values / self.bits.size)) ** self.hashes

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": int(self.bits.size),
            "hashes": self.hashes,
            "values": self.values,
            "false_positive_rate": self.false_positive_rate,
            "bits": base64.b64encode(np.packbits(self.bits).tobytes()).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TailValues:
        packed = np.frombuffer(base64.b64decode(data["bits"]), dtype=np.uint8)
        bits = np.unpackbits(packed)[: int(data["size"])].astype(bool)
        return cls(bits=bits, hashes=int(data["hashes"]), values=int(data["values"]))
