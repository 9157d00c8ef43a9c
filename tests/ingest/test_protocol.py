"""Responses leave in one write: what uvicorn writes during one loop turn reaches the socket
together, in order, and nothing written before a close is lost."""

from __future__ import annotations

import asyncio
import socket

import uvloop

from services.ingest.protocol import CoalescingTransport

HEAD = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n"


class Recorder(asyncio.Protocol):
    pass


class Counted:
    """The real transport, with its write calls recorded."""

    def __init__(self, transport: asyncio.BaseTransport, writes: list[bytes]) -> None:
        self.transport, self.writes = transport, writes

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self.transport, name)


async def _pair() -> tuple[socket.socket, asyncio.Transport, list[bytes]]:
    """A real connected socket pair (uvloop, as in production); our side's writes are recorded."""
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    transport, _ = await loop.create_connection(Recorder, sock=ours)
    writes: list[bytes] = []
    return theirs, Counted(transport, writes), writes  # type: ignore[return-value]


def _read(sock: socket.socket, n: int) -> bytes:
    sock.settimeout(5)
    data = b""
    while len(data) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_head_and_body_written_in_one_turn_go_out_in_one_write():
    async def scenario() -> tuple[list[bytes], bytes]:
        peer, transport, writes = await _pair()
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        coalescing.write(HEAD)
        coalescing.write(b"{}")
        assert writes == []  # nothing sent before the turn ends
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        received = _read(peer, len(HEAD) + 2)
        transport.close()
        peer.close()
        return writes, received

    writes, received = uvloop.run(scenario())
    assert writes == [HEAD + b"{}"]
    assert received == writes[0]


def test_close_sends_what_was_written_first():
    async def scenario() -> bytes:
        peer, transport, _ = await _pair()
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        coalescing.write(b"last words")
        coalescing.close()
        await asyncio.sleep(0.05)
        received = _read(peer, 100)
        peer.close()
        return received

    assert uvloop.run(scenario()) == b"last words"


def test_abort_drops_what_was_not_sent():
    async def scenario() -> list[bytes]:
        peer, transport, writes = await _pair()
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        coalescing.write(b"never")
        coalescing.abort()
        await asyncio.sleep(0.05)
        peer.close()
        return writes

    assert uvloop.run(scenario()) == []
