"""A request body that arrives in pieces, as the network delivers it."""

from __future__ import annotations

import io
import itertools


class Pieces(io.BytesIO):
    """A body that arrives in the given pieces: no read returns bytes of two pieces, as
    reads from a socket return what has arrived."""

    def __init__(self, pieces: list[bytes]):
        super().__init__(b"".join(pieces))
        self.ends = list(itertools.accumulate(len(p) for p in pieces))

    def _short(self, size: int) -> int:
        position = self.tell()
        piece_end = next((end for end in self.ends if end > position), position)
        return piece_end - position if size < 0 else min(size, piece_end - position)

    def read(self, size: int | None = -1) -> bytes:
        return super().read(self._short(-1 if size is None else size))

    read1 = read

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
