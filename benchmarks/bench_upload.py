"""Upload goodput over a shaped link: the library vs one streamed PUT of the same bytes.

Three processes besides the clients, all on 127.0.0.1:

* a **resumable-protocol server** that discards the bytes it reads: ``POST .../videos?
  uploadType=resumable`` opens a session (``Location``), ``PUT`` with ``Content-Range: bytes
  a-b/N`` answers ``308`` + ``Range`` until the whole file arrived, then ``200`` + ``{"id"}``;
  ``bytes */N`` is a status query;
* a **shaping relay** between client and server (the kernel here has no ``netem``): each
  direction's bytes are paced at ``--rate`` (serialisation) and delivered ``RTT/2`` later
  (propagation), with at most ``2 x BDP + 1 MiB`` in flight per direction (a TCP window large
  enough for the link to be the limit). What matters for the request shape is reproduced: a
  request that waits for its answer leaves the link idle for one round trip.
* each measured upload runs in a **fresh client process**, which reports its wall time, CPU time
  and the growth of its peak RSS over the upload (after a warm-up upload of 2 MiB).

The reference, ``single_put``, is ``http.client`` opening a session and sending the whole file in
one streamed ``PUT`` (1 MiB reads), through the same relay to the same server, in the same run.
``ratio`` = library goodput / reference goodput (medians over ``--rounds``).

    python benchmarks/bench_upload.py                       # 1 Gbit/s at 100 and 20 ms, loopback
    python benchmarks/bench_upload.py --size-mib 256 --rounds 3 --links 1g100,1g20,loopback \\
        --chunks whole,8,64
    python benchmarks/bench_upload.py --size-mib 4096 --sparse --rounds 1 --links loopback
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import multiprocessing as mp
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

MIB = 1024 * 1024
LINKS = {  # name: (rate in bit/s, round-trip time in s); rate 0: no relay (loopback)
    "1g100": (1_000_000_000, 0.100),
    "1g20": (1_000_000_000, 0.020),
    "100m100": (100_000_000, 0.100),
    "100m20": (100_000_000, 0.020),
    "loopback": (0, 0.0),
}
_RECV = 1 * MIB

# -- the resumable-protocol server (discards bytes) -----------------------------------------------


def _read_head(conn: socket.socket, pending: bytearray) -> tuple[str, dict[str, str]] | None:
    while b"\r\n\r\n" not in pending:
        data = conn.recv(65536)
        if not data:
            return None
        pending += data
    head, _, rest = bytes(pending).partition(b"\r\n\r\n")
    pending[:] = rest
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def _discard_body(conn: socket.socket, pending: bytearray, length: int, buf: bytearray) -> int:
    """Read and discard ``length`` body bytes; returns how many arrived."""
    got = min(len(pending), length)
    del pending[:got]
    view = memoryview(buf)
    while got < length:
        n = conn.recv_into(view[: min(len(buf), length - got)])
        if not n:
            break
        got += n
    return got


def _answer(conn: socket.socket, status: str, headers: dict[str, str], body: bytes = b"") -> None:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


class _Sessions:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.offsets: dict[str, int] = {}
        self.next = 0

    def open(self) -> str:
        with self.lock:
            self.next += 1
            sid = f"s{self.next}"
            self.offsets[sid] = 0
            return sid


def _media(conn, pending, buf, sessions, sid, headers) -> None:  # type: ignore[no-untyped-def]
    length = int(headers.get("content-length", "0"))
    spec = headers.get("content-range", "").removeprefix("bytes ")
    where, _, total_text = spec.partition("/")
    got = _discard_body(conn, pending, length, buf)
    total = int(total_text)
    with sessions.lock:
        offset = sessions.offsets[sid]
        if where != "*":
            start = int(where.split("-")[0])
            if start <= offset < start + got:
                offset = start + got
            sessions.offsets[sid] = offset
    if got < length:
        raise ConnectionError("client went away")
    if offset >= total:
        _answer(conn, "200 OK", {"Content-Type": "application/json"}, b'{"id": "bench"}')
    else:
        _answer(conn, "308 Resume Incomplete", {"Range": f"bytes=0-{offset - 1}"} if offset else {})


def _serve_connection(conn: socket.socket, sessions: _Sessions) -> None:
    pending = bytearray()
    buf = bytearray(_RECV)
    with conn:
        while True:
            parsed = _read_head(conn, pending)
            if parsed is None:
                return
            line, headers = parsed
            target = line.split(" ")[1]
            if "upload_id=" in target:
                sid = target.rsplit("upload_id=", 1)[1]
                try:
                    _media(conn, pending, buf, sessions, sid, headers)
                except ConnectionError:
                    return
                continue
            _discard_body(conn, pending, int(headers.get("content-length", "0")), buf)
            sid = sessions.open()
            host = headers.get("host", "127.0.0.1")
            location = (
                f"http://{host}/upload/youtube/v3/videos?uploadType=resumable&upload_id={sid}"
            )
            _answer(conn, "200 OK", {"Location": location})


def _listen() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def _accept_forever(sock: socket.socket, handle: Any, *args: Any) -> None:
    while True:
        conn, _ = sock.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(conn, *args), daemon=True).start()


def server_main(port_queue: Any) -> None:
    sock = _listen()
    port_queue.put(sock.getsockname()[1])
    _accept_forever(sock, _serve_connection, _Sessions())


# -- the shaping relay ----------------------------------------------------------------------------


class _Pipe:
    """One direction: paced at ``rate`` bytes/s, delivered ``delay`` s later, bounded."""

    def __init__(self, rate: float, delay: float, cap: int) -> None:
        self.rate, self.delay, self.cap = rate, delay, cap
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.queued = 0
        self.depart = 0.0
        self.cond = threading.Condition()
        self.closed = False

    def reader(self, src: socket.socket) -> None:
        while True:
            data = src.recv(256 * 1024)
            with self.cond:
                if not data:
                    self.closed = True
                    self.cond.notify_all()
                    return
                while self.queued > self.cap:
                    self.cond.wait()
                now = time.monotonic()
                self.depart = max(self.depart, now) + len(data) / self.rate
                self.queue.append((self.depart + self.delay, data))
                self.queued += len(data)
                self.cond.notify_all()

    def writer(self, dst: socket.socket) -> None:
        while True:
            with self.cond:
                while not self.queue and not self.closed:
                    self.cond.wait()
                if not self.queue:
                    break
                due, data = self.queue.popleft()
                self.queued -= len(data)
                self.cond.notify_all()
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            try:
                dst.sendall(data)
            except OSError:
                break
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _relay_connection(client: socket.socket, port: int, rate: float, delay: float) -> None:
    server = socket.create_connection(("127.0.0.1", port))
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cap = int(2 * rate * 2 * delay) + MIB
    threads = []
    for src, dst in ((client, server), (server, client)):
        pipe = _Pipe(rate, delay, cap)
        threads += [
            threading.Thread(target=pipe.reader, args=(src,), daemon=True),
            threading.Thread(target=pipe.writer, args=(dst,), daemon=True),
        ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    server.close()


def relay_main(port_queue: Any, server_port: int, rate_bits: int, rtt: float) -> None:
    sock = _listen()
    port_queue.put(sock.getsockname()[1])
    _accept_forever(sock, _relay_connection, server_port, rate_bits / 8, rtt / 2)


# -- clients (each in a fresh process) ------------------------------------------------------------


def _single_put(endpoint: str, path: str) -> None:
    import http.client
    import urllib.parse

    host = urllib.parse.urlsplit(endpoint).netloc
    size = os.path.getsize(path)
    conn = http.client.HTTPConnection(host, blocksize=MIB)
    conn.request("POST", "/upload/youtube/v3/videos?uploadType=resumable&part=snippet", b"{}")
    resp = conn.getresponse()
    resp.read()
    target = urllib.parse.urlsplit(resp.headers["Location"])
    with open(path, "rb") as fh:
        headers = {"Content-Length": str(size), "Content-Range": f"bytes 0-{size - 1}/{size}"}
        conn.request("PUT", f"{target.path}?{target.query}", fh, headers)
        resp = conn.getresponse()
        resp.read()
    assert resp.status == 200, resp.status
    conn.close()


def _library_upload(uploader: Any, path: str) -> None:
    from datetime import UTC, datetime, timedelta

    from langflix_scheduler.domain import VideoMetadata
    from langflix_scheduler.youtube.uploader import UploadRequest

    request = UploadRequest(
        video_path=path,
        metadata=VideoMetadata(title="bench"),
        publish_at=datetime.now(UTC) + timedelta(days=2),
    )
    uploader.upload(request)


def client_main(args: argparse.Namespace) -> None:
    if args.client == "single_put":

        def upload(path: str) -> None:
            _single_put(args.endpoint, path)
    else:
        from google.oauth2.credentials import Credentials

        from langflix_scheduler.youtube.google import YouTubeUploader

        chunk = None if args.client == "whole" else int(args.client) * MIB
        uploader = YouTubeUploader(
            Credentials(token="bench"), api_endpoint=args.endpoint, chunk_size=chunk
        )

        def upload(path: str) -> None:
            _library_upload(uploader, path)

    upload(args.warmup)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before = time.process_time()
    started = time.perf_counter()
    upload(args.file)
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    rss_growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024
    print(json.dumps({"seconds": seconds, "cpu_s": cpu, "rss_growth_bytes": rss_growth}))


# -- the driver -----------------------------------------------------------------------------------


def _start(target: Any, *args: Any) -> tuple[Any, int]:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(queue, *args), daemon=True)
    proc.start()
    return proc, int(queue.get(timeout=30))


def _run_client(mode: str, endpoint: str, path: str, warmup: str) -> dict[str, float]:
    cmd = [sys.executable, os.path.abspath(__file__), "--client", mode, "--endpoint", endpoint]
    cmd += ["--file", path, "--warmup", warmup]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=900)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _summarise(runs: list[dict[str, float]], size: int) -> dict[str, float]:
    seconds = statistics.median(r["seconds"] for r in runs)
    return {
        "goodput_mb_s": round(size / seconds / 1e6, 1),
        "seconds_median": round(seconds, 3),
        "cpu_s_per_gb": round(statistics.median(r["cpu_s"] for r in runs) / (size / 1e9), 3),
        "rss_growth_mb_max": round(max(r["rss_growth_bytes"] for r in runs) / 1e6, 2),
    }


def _bench_link(name: str, modes: list[str], args: argparse.Namespace, files: tuple[str, str]):  # type: ignore[no-untyped-def]
    rate, rtt = LINKS[name]
    server, server_port = _start(server_main)
    relay = None
    port = server_port
    if rate:
        relay, port = _start(relay_main, server_port, rate, rtt)
    endpoint = f"http://127.0.0.1:{port}"
    size = os.path.getsize(files[0])
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in ["single_put", *modes]}
    try:
        for _ in range(args.rounds):  # interleaved, so a busy spell hits every mode alike
            for mode, mode_runs in runs.items():
                mode_runs.append(_run_client(mode, endpoint, files[0], files[1]))
    finally:
        for proc in (server, relay):
            if proc is not None:
                proc.kill()
    result = {mode: _summarise(r, size) for mode, r in runs.items()}
    reference = result["single_put"]["goodput_mb_s"]
    for mode in modes:
        result[mode]["ratio"] = round(result[mode]["goodput_mb_s"] / reference, 3)
    return {"link": name, "rate_bit_s": rate, "rtt_s": rtt, "results": result}


def _make_file(directory: str, name: str, size: int, *, sparse: bool = False) -> str:
    path = os.path.join(directory, name)
    if sparse:  # zeros without using the disk: for very large uploads (RSS over 4 GB)
        with open(path, "wb") as fh:
            fh.truncate(size)
        return path
    block = os.urandom(MIB)
    with open(path, "wb") as fh:
        for _ in range(size // MIB):
            fh.write(block)
        fh.write(block[: size % MIB])
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--links", default="1g100,1g20,loopback")
    parser.add_argument("--chunks", default="whole,8,64", help="whole and/or MiB per request")
    parser.add_argument("--sparse", action="store_true", help="a sparse file (zeros; no disk)")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args)
        return
    modes = [m.strip() for m in args.chunks.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        big = _make_file(tmp, "big.bin", args.size_mib * MIB, sparse=args.sparse)
        files = (big, _make_file(tmp, "warm.bin", 2 * MIB))
        links = [_bench_link(name, modes, args, files) for name in args.links.split(",")]
    report = {"size_bytes": args.size_mib * MIB, "rounds": args.rounds, "links": links}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
