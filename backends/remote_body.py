"""Reading a streamed HTTP response body as lines, the moment its bytes arrive.

http.client's own reading waits in places a live answer cannot: its chunked reader blocks
on the next chunk's size before handing out the bytes it already has, and a response
without a length (`Connection: close`, HTTP/1.0) is read through a file object whose socket
http.client has already let go of. `BodyLines` reads the response's buffered file with
`read1` (whatever has arrived, at most one system call), undoes chunked framing itself, and
yields lines as soon as they are complete. A line longer than `max_line` bytes is refused
(`LineTooLong`) so an endless line cannot fill the memory; every other buffer is bounded too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

MAX_LINE = 1 << 20  # 1 MiB: an SSE line of a chat answer is a few hundred bytes
READ_SIZE = 64 * 1024
_MAX_SIZE_LINE = 4096  # a chunk-size line (hex size + extensions)


class Readable(Protocol):
    def read1(self, size: int = ..., /) -> bytes: ...


class LineTooLong(ValueError):
    """The server sent more than `max_line` bytes without a line break."""


class BadFraming(ValueError):
    """The chunked framing of the body is broken."""


class BodyLines:
    """Lines (with their `\\n`) of a body framed as `chunked`, by `length` or by close."""

    def __init__(self, fp: Readable, chunked: bool, length: int | None,
                 max_line: int = MAX_LINE) -> None:  # fmt: skip
        self.fp = fp
        self.chunked = chunked
        self.length = None if chunked else length
        self.max_line = max_line
        self.received = 0  # body bytes so far (after chunked decoding)
        self.complete = False  # the body ended by its own framing (not by a lost connection)
        self._chunk_left = 0  # bytes left in the current chunk
        self._state = "size"  # size, data, crlf, trailer, end
        self._size_line = bytearray()

    def lines(self) -> Iterator[bytes]:
        buf = bytearray()
        scanned = 0  # no newline in buf[:scanned]
        for data in self._data():
            buf += data
            while True:
                nl = buf.find(b"\n", scanned)
                if nl < 0:
                    scanned = len(buf)
                    if len(buf) > self.max_line:
                        raise LineTooLong(f"more than {self.max_line} bytes without a line break")
                    break
                line = bytes(buf[: nl + 1])
                del buf[: nl + 1]
                scanned = 0
                yield line
        if buf:
            yield bytes(buf)

    # -- framing -------------------------------------------------------------------------
    def _data(self) -> Iterator[bytes]:
        """Body bytes as they arrive; ends at the end of the body or when the server closes."""
        while not self.complete:
            if self.length is not None and self.received >= self.length:
                self.complete = True
                return
            raw = self.fp.read1(READ_SIZE)
            if not raw:
                if self.length is None and not self.chunked:
                    self.complete = True  # close-delimited: the close is the end
                return
            if not self.chunked:
                if self.length is not None:
                    raw = raw[: self.length - self.received]
                self.received += len(raw)
                yield raw
                continue
            body = self._unchunk(raw)
            if body:
                self.received += len(body)
                yield body

    def _unchunk(self, raw: bytes) -> bytes:
        out = bytearray()
        i = 0
        while i < len(raw) and self._state != "end":
            if self._state in ("size", "crlf", "trailer"):
                nl = raw.find(b"\n", i)
                part = raw[i:] if nl < 0 else raw[i : nl + 1]
                self._size_line += part
                i += len(part)
                if len(self._size_line) > _MAX_SIZE_LINE:
                    raise BadFraming("a chunk header longer than 4 KB")
                if nl < 0:
                    break
                line = bytes(self._size_line).strip()
                self._size_line.clear()
                self._after_line(line)
            else:  # data
                take = min(self._chunk_left, len(raw) - i)
                out += raw[i : i + take]
                i += take
                self._chunk_left -= take
                if not self._chunk_left:
                    self._state = "crlf"
        return bytes(out)

    def _after_line(self, line: bytes) -> None:
        if self._state == "crlf":
            if line:
                raise BadFraming("a chunk longer than its size")
            self._state = "size"
        elif self._state == "size":
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise BadFraming(f"a chunk size that is not a number: {line[:40]!r}") from None
            if size < 0:
                raise BadFraming("a negative chunk size")
            if size == 0:
                self._state = "trailer"
            else:
                self._chunk_left, self._state = size, "data"
        elif not line:  # the empty line after the trailer ends the body
            self._state = "end"
            self.complete = True
