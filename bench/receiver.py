"""A webhook receiver for the bench: answers every request 204 at once, keep-alive, in its
own process, and counts them (printed on SIGTERM). `python -m bench.receiver --port P`."""

from __future__ import annotations

import argparse
import asyncio
import signal

_ANSWER = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"


async def _serve(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: list[int]
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            seen[0] += 1
            writer.write(_ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
        pass  # the client left, or the receiver is stopping
    finally:
        writer.close()


async def main(port: int) -> None:
    seen = [0]
    server = await asyncio.start_server(
        lambda r, w: _serve(r, w, seen), "127.0.0.1", port, backlog=1024
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    print(f"received {seen[0]}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
