"""A loopback HTTP server that serves a data dir the way a mirror would, with injectable faults.

The public loaders download `<mirror>/<dataset>/<path>` when `TRUSTDIFF_DATA_MIRROR` is set, so
serving `shared/data` here exercises the real download code (httpx, streaming, checksum, atomic
rename) without the internet. Faults, per URL path (e.g. ``/xstest/xstest_prompts.csv``):

- ``404``: not found;
- ``corrupt``: the right length, one byte changed (checksum mismatch);
- ``truncate``: Content-Length of the whole file, half the body, then the connection closes;
- ``short``: a well-formed response whose body is only half the file;
- ``drop``: the connection closes before any response.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class DataServer:
    """The running server: its base URL, the paths requested so far, and the faults to inject."""

    url: str
    requests: list[str] = field(default_factory=list)
    faults: dict[str, str] = field(default_factory=dict)


def _handler(root: Path, state: DataServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            state.requests.append(path)
            fault = state.faults.get(path)
            file = (root / path.lstrip("/")).resolve()
            if fault == "drop":
                self.close_connection = True
                return
            if fault == "404" or not file.is_file() or root.resolve() not in file.parents:
                self.send_error(404)
                return
            body = file.read_bytes()
            length = len(body)
            if fault == "corrupt":
                body = bytes([body[0] ^ 0x01]) + body[1:]
            elif fault in ("truncate", "short"):
                body = body[: len(body) // 2]
                if fault == "short":
                    length = len(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True

    return Handler


@contextmanager
def serve(root: Path, faults: Mapping[str, str] | None = None) -> Iterator[DataServer]:
    """Serve `root` on 127.0.0.1 (a free port) for the duration of the block."""
    state = DataServer(url="", faults=dict(faults or {}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
