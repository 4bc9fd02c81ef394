"""A TCP fault proxy for tests: sits between two of the suite's processes on loopback and can pass,
delay, drop (close every connection), reset (close with RST) or blackhole (keep connections open and
swallow every byte, as a silent network partition does) the traffic.

It runs an asyncio server in a thread of the test process; `mode` can be changed at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Iterator

from tests.harness import free_port

PASS, DELAY, DROP, RESET, BLACKHOLE = "pass", "delay", "drop", "reset", "blackhole"


class FaultProxy:
    """Forwards 127.0.0.1:port to a target address, with a fault mode."""

    def __init__(self, target_port: int, delay_s: float = 0.2) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode = PASS
        self.delay_s = delay_s
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def set_mode(self, mode: str) -> None:
        """Switch the fault; DROP and RESET also cut the connections open now."""
        self.mode = mode
        if mode in (DROP, RESET):
            asyncio.run_coroutine_threadsafe(self._cut(mode == RESET), self._loop).result(5)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _cut(self, reset: bool) -> None:
        for writer in list(self._writers):
            sock = writer.get_extra_info("socket")
            if reset and sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode in (DROP, RESET):
            await self._close(writer, reset=self.mode == RESET)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            await self._close(writer, reset=True)
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True)
        self._writers -= {writer, up_writer}

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if self.mode == BLACKHOLE:
                    continue  # swallowed: neither side hears anything
                if self.mode == DELAY:
                    await asyncio.sleep(self.delay_s)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    async def _close(writer: asyncio.StreamWriter, reset: bool) -> None:
        sock = writer.get_extra_info("socket")
        if reset and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()


@contextlib.contextmanager
def fault_proxy(target_port: int) -> Iterator[FaultProxy]:
    proxy = FaultProxy(target_port).start()
    try:
        yield proxy
    finally:
        proxy.stop()
