#!/usr/bin/env python3
"""Soak test for `wristssl serve`: a long mixed load of good, hostile and slow clients, and the server's memory.

    bench/soak_serve.py http://127.0.0.1:8080 samples/grazpedwri-dx/images/0004_0542630449_01_WRI-L1_M003.png \
        --requests 20000 --concurrency 8 --rss-pid PID [--token T] [--warmup 500] [--hostile 0.1] [--slow 2]
        [--body-limit-mb 64] [--rss-tolerance 5] [--timeout 120] [--cafile CERT.pem | --insecure] (https)

--concurrency threads, each with a keep-alive connection (http.client), share --requests requests, numbered in
the order taken. Request i is hostile when i % k == k - 1, k = round(1 / --hostile); the others are valid: FILE
POSTed to /v1/predict with the token. Hostile requests rotate through garbage (seeded random bytes, no image
signature), empty (no body), wrong_token (only with --token), truncated (FILE's first 20-60%, seeded),
unknown_path (GET /../../etc/passwd or /%2e%2e/%2e%2e/etc/passwd) and huge_header (a 100 KB header line), but
the first hostile request of each block of 1000 is oversized (--body-limit-mb MiB + 1 byte, streamed).
oversized and huge_header use a fresh connection; all but wrong_token carry the right token. The server should
answer 400, 400, 401, 400, 404 (or 400), 4xx and 413.
Counting: a valid request is ok on 200, busy_503 on 503 (full queue; allowed), else an error (another status or
a transport failure). A hostile one is expected on a 4xx or, for oversized and huge_header, when the server
closed the connection; busy_503 on 503 (garbage and truncated are queued too); else (200, 5xx, a timeout)
unexpected; status_by_kind holds every answer. As in load_serve.py, a request that failed because the server
had closed a kept-alive connection is retried once on a fresh one.
--slow threads (not among --requests) open raw sockets all run long, alternating a slowloris (request line and
headers, 8 bytes every 0.5 s, never finished) and a stalled body (headers with Content-Length, then 64 bytes of
body, 8 bytes every 0.5 s), then send nothing. A connection is closed_by_server when the server closes or
answers it (its read timeout), open_at_end when it was still open at the end.
--rss-pid: VmRSS every 0.5 s and when the --warmup'th request is answered (after_warmup; with --warmup 0 the
first sample); change_pct is end vs after_warmup; vm_hwm_mb is VmHWM at the end; server_cpu_s is utime + stime
over the run (/proc/PID/stat).
Output: on stderr a progress line every 1000 answers (every tenth of a shorter run); on stdout one JSON object:
requests, valid {sent, ok, busy_503, errors_by_kind}, hostile {sent, expected, busy_503, unexpected_by_kind,
status_by_kind}, slow {threads, connections, closed_by_server, open_at_end}, errors (valid errors + hostile
unexpected), first_error, wall_s, server_cpu_s, rss_mb {after_warmup, end, max, change_pct, samples}, vm_hwm_mb,
latency_ms {p50, p90, p99, max} of valid 200s (linear interpolation between order statistics, as numpy's).
Exit status: 0 when errors == 0, a valid request got 200 and, with --rss-pid, the process lived and
|change_pct| <= --rss-tolerance; 1 otherwise, with the reasons on stderr; 2 on bad arguments.
Python 3 standard library only, so any python3 runs it.
"""
import argparse
import collections
import http.client
import itertools
import json
import os
import random
import select
import socket
import ssl
import sys
import threading
import time
import urllib.parse

RSS_PERIOD_S = 0.5
SLOW_PAUSE_S, SLOW_CHUNK = 0.5, 8
SEED = 20261129
OVERSIZED_EVERY = 1000
OCTET = {"Content-Type": "application/octet-stream"}
UNKNOWN_PATHS = ("/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd")
# The server closed a kept-alive connection before answering (see load_serve.py): one retry on a fresh one.
STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ssl.SSLEOFError)
CLOSED = STALE_CONNECTION + (ConnectionAbortedError,)  # the server dropped an oversized request


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url", help="server base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("file", help="image sent as the valid requests' body (PNG, JPEG or DICOM)")
    p.add_argument("--requests", type=int, default=20000, help="requests answered in all (default 20000)")
    p.add_argument("--concurrency", type=int, default=8, help="client threads (default 8)")
    p.add_argument("--rss-pid", type=int, default=0, help="the server's PID: sample its memory and CPU time")
    p.add_argument("--token", default="", help="sent as Authorization: Bearer TOKEN")
    p.add_argument("--warmup", type=int, default=500, help="RSS baseline after this many answers (default 500)")
    p.add_argument("--hostile", type=float, default=0.1, help="hostile fraction: 0 or 0.01-0.5 (default 0.1)")
    p.add_argument("--slow", type=int, default=2, help="slow-client threads (default 2)")
    p.add_argument("--body-limit-mb", type=int, default=64, help="the server's --max-body-mb (default 64)")
    p.add_argument("--rss-tolerance", type=float, default=5.0, help="allowed |RSS change| in %% (default 5)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take (default 120)")
    p.add_argument("--cafile", default="", help="https: trust this CA or self-signed certificate (PEM)")
    p.add_argument("--insecure", action="store_true", help="https: do not verify the server's certificate")
    a = p.parse_args(argv)
    if a.requests < 1 or a.concurrency < 1 or a.slow < 0 or a.body_limit_mb < 1 or a.timeout <= 0:
        p.error("--requests, --concurrency, --body-limit-mb and --timeout must be positive, --slow not negative")
    if not 0 <= a.warmup < a.requests:
        p.error(f"--warmup {a.warmup}: must be at least 0 and less than --requests")
    if not (a.hostile == 0 or 0.01 <= a.hostile <= 0.5):
        p.error(f"--hostile {a.hostile}: must be 0 or between 0.01 and 0.5")
    u = urllib.parse.urlsplit(a.url)
    if u.scheme not in ("http", "https") or not u.hostname:
        p.error(f"url '{a.url}' is not http://HOST[:PORT] or https://HOST[:PORT]")
    a.scheme, a.host, a.port = u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80)
    a.prefix = u.path.rstrip("/")  # a base URL with a path (behind a reverse proxy) prefixes every path
    if not os.path.isfile(a.file):
        p.error(f"file '{a.file}' does not exist")
    if a.rss_pid and not os.path.exists(f"/proc/{a.rss_pid}/status"):
        p.error(f"--rss-pid {a.rss_pid}: /proc/{a.rss_pid}/status does not exist (no such process, or not Linux)")
    a.k = round(1 / a.hostile) if a.hostile > 0 else 0
    kinds = ["garbage", "empty", "wrong_token", "truncated", "unknown_path", "huge_header"]
    a.kinds = [k for k in kinds if a.token or k != "wrong_token"]
    return a


def read_status_kb(pid, field):
    """A `field:   N kB` line of /proc/PID/status, in kB; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith(field + ":")), None)
    except (FileNotFoundError, ProcessLookupError):
        return None


def cpu_seconds(pid):
    """utime + stime of /proc/PID/stat (fields 14 and 15; the name in parentheses may hold spaces)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


class Rss(threading.Thread):
    """PID's VmRSS every RSS_PERIOD_S until done is set: kB values in .kb; .gone once the process has ended."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.kb, self.gone, self.done = pid, [], False, threading.Event()

    def sample(self):
        kb = read_status_kb(self.pid, "VmRSS")
        self.gone = self.gone or kb is None
        if kb is not None:
            self.kb.append(kb)
        return kb

    def run(self):
        while not self.done.wait(RSS_PERIOD_S):
            self.sample()


def percentile(sorted_values, q):
    """Linear interpolation between order statistics (numpy's default), q in [0, 100]."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def ssl_context(args):
    ctx = ssl.create_default_context(cafile=args.cafile or None)
    if args.insecure:
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


class Client:
    """One thread's keep-alive connection; http.client reopens it by itself after a `Connection: close`."""

    def __init__(self, args):
        self.args, self.used = args, False
        if args.scheme == "https":
            self.conn = http.client.HTTPSConnection(args.host, args.port, timeout=args.timeout,
                                                    context=ssl_context(args))
        else:
            self.conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)

    def send(self, method, path, body, headers):
        """(status, body), with one retry on a fresh connection when a kept-alive one turns out to be closed."""
        for attempt in (0, 1):
            reused, self.used = self.used and self.conn.sock is not None, True
            try:
                self.conn.request(method, self.args.prefix + path, body=body, headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.conn.close()
                if attempt or not reused or not isinstance(e, STALE_CONNECTION):
                    raise


def once(args, method, path, body, headers):
    """(status, body) of a request on a fresh connection, closed after; "closed" when the server closed it first."""
    client = Client(args)
    try:
        return client.send(method, path, body, headers)
    except CLOSED:
        return "closed", b""
    finally:
        client.conn.close()


def hostile_kind(args, i):
    """Oversized for the first hostile request in each block of OVERSIZED_EVERY, else the next in the rotation."""
    return "oversized" if i % OVERSIZED_EVERY < args.k else args.kinds[(i // args.k) % len(args.kinds)]


def hostile_request(args, client, kind, i, image, auth):
    """(status or "closed", body) of hostile request i."""
    rnd = random.Random(SEED * 1_000_003 + i)
    if kind == "oversized":  # streamed 1 MiB at a time
        n, mib = args.body_limit_mb * 1024 * 1024 + 1, bytes(1024 * 1024)
        chunks = (mib if off + len(mib) <= n else mib[:n - off] for off in range(0, n, len(mib)))
        return once(args, "POST", "/v1/predict", chunks, {**OCTET, **auth, "Content-Length": str(n)})
    if kind == "huge_header":
        return once(args, "GET", "/v2/health/live", None, {"X-Huge": "a" * 100_000})
    if kind == "unknown_path":
        return client.send("GET", UNKNOWN_PATHS[(i // args.k) % len(UNKNOWN_PATHS)], None, auth)
    if kind == "garbage":
        body = bytes([rnd.randrange(0x10, 0x80)]) + rnd.randbytes(rnd.randrange(1, 4096))  # no PNG/JPEG/DICOM start
    elif kind == "empty":
        body = b""
    elif kind == "wrong_token":
        body, auth = image, {"Authorization": "Bearer wrong-" + args.token}
    else:  # truncated
        body = image[:max(1, int(len(image) * rnd.uniform(0.2, 0.6)))]
    return client.send("POST", "/v1/predict", body, {**OCTET, **auth})


def slow_client(args, image, stop, stats, lock, start):
    """Slowloris and stalled-body connections, one after another (the first: modes[start % 2]), until stop."""
    auth = f"Authorization: Bearer {args.token}\r\n" if args.token else ""
    head = f"POST {args.prefix}/v1/predict HTTP/1.1\r\nHost: {args.host}\r\nContent-Type: application/octet-stream\r\n"
    body_head = (head + auth + f"Content-Length: {len(image)}\r\n\r\n").encode()
    # (bytes sent at once, payload): headers never finished; full headers, then a body that stalls after 64 bytes
    modes = [(0, (head + auth + "X-Slow: never-finished").encode()), (len(body_head), body_head + image[:64])]
    for n in itertools.count():
        if stop.is_set():
            return
        sent, payload = modes[(start + n) % 2]
        try:
            sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
            if args.scheme == "https":
                sock = ssl_context(args).wrap_socket(sock, server_hostname=args.host)
            sock.settimeout(SLOW_PAUSE_S)
        except OSError:
            stop.wait(1)
            continue
        with lock:
            stats["connections"] += 1
        closed = False
        try:
            sock.sendall(payload[:sent])
            while not stop.is_set() and not closed:
                if sent < len(payload):
                    sock.sendall(payload[sent:sent + SLOW_CHUNK])
                    sent += SLOW_CHUNK
                if select.select([sock], [], [], SLOW_PAUSE_S)[0]:
                    try:
                        sock.recv(4096)  # an answer or the end of the stream: the server is done with us
                        closed = True
                    except (socket.timeout, ssl.SSLWantReadError):  # TLS records that carry no data
                        pass
        except OSError:
            closed = True
        finally:
            sock.close()
        with lock:
            stats["closed_by_server" if closed else "open_at_end"] += 1
        stop.wait(0.1)


def main(argv):
    args = parse_args(argv)
    with open(args.file, "rb") as f:
        image = f.read()
    auth = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    lock, stop = threading.Lock(), threading.Event()
    n = collections.Counter()  # next, answered, {valid,hostile}_{sent,busy}, ok, expected
    valid_errors, unexpected, by_kind = collections.Counter(), collections.Counter(), {}
    errors, latencies, after_warmup_kb = [], [], []
    slow = {"threads": args.slow, "connections": 0, "closed_by_server": 0, "open_at_end": 0}
    every = min(1000, max(1, args.requests // 10))
    rss = Rss(args.rss_pid) if args.rss_pid else None

    def one(client, i):
        """Send request i and count its answer."""
        kind = hostile_kind(args, i) if args.k and i % args.k == args.k - 1 else "valid"
        t0 = time.perf_counter()
        try:
            if kind == "valid":
                status, data = client.send("POST", "/v1/predict", image, {**OCTET, **auth})
            else:
                status, data = hostile_request(args, client, kind, i, image, auth)
        except (OSError, http.client.HTTPException) as e:
            status, data = type(e).__name__, str(e).encode()
        ms = (time.perf_counter() - t0) * 1000.0
        err = f"request {i}: {kind} answered {status}: {data[:200].decode('utf-8', 'replace')}"
        with lock:
            if kind == "valid":
                n["valid_sent"] += 1
                if status == 200:
                    n["ok"] += 1
                    latencies.append(ms)
                elif status == 503:
                    n["valid_busy"] += 1
                else:
                    valid_errors[str(status)] += 1
                    errors.append(err)
            else:
                n["hostile_sent"] += 1
                by_kind.setdefault(kind, collections.Counter())[str(status)] += 1
                if status == 503:
                    n["hostile_busy"] += 1
                elif status == "closed" or (isinstance(status, int) and 400 <= status < 500):
                    n["expected"] += 1
                else:
                    unexpected[kind] += 1
                    errors.append(err)
            n["answered"] += 1
            if rss and n["answered"] == args.warmup:
                after_warmup_kb.append(rss.sample())
            if n["answered"] % every == 0:
                kb = read_status_kb(args.rss_pid, "VmRSS") if rss else None
                print(f"soak_serve: {n['answered']}/{args.requests} answered, {len(errors)} errors, RSS "
                      f"{'-' if kb is None else round(kb / 1024, 1)} MB", file=sys.stderr, flush=True)

    def worker():
        client = Client(args)
        try:
            while True:
                with lock:
                    i, n["next"] = n["next"], n["next"] + 1
                if i >= args.requests:
                    return
                one(client, i)
        finally:
            client.conn.close()

    cpu0 = cpu_seconds(args.rss_pid) if rss else None
    if rss:
        first_kb = rss.sample()
        if not args.warmup:
            after_warmup_kb.append(first_kb)
        rss.start()
    slow_threads = [threading.Thread(target=slow_client, args=(args, image, stop, slow, lock, s), daemon=True)
                    for s in range(args.slow)]
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(args.concurrency)]
    t0 = time.perf_counter()
    for t in slow_threads + threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    stop.set()
    for t in slow_threads:
        t.join()

    lat = sorted(latencies)
    mb = lambda kb: None if kb is None else round(kb / 1024, 1)  # noqa: E731
    out = {"url": args.url, "file": args.file, "bytes": len(image), "requests": n["answered"],
           "valid": {"sent": n["valid_sent"], "ok": n["ok"], "busy_503": n["valid_busy"],
                     "errors_by_kind": valid_errors},
           "hostile": {"sent": n["hostile_sent"], "expected": n["expected"], "busy_503": n["hostile_busy"],
                       "unexpected_by_kind": unexpected, "status_by_kind": by_kind},
           "slow": slow, "errors": len(errors), "first_error": errors[0] if errors else None,
           "wall_s": round(wall, 3), "server_cpu_s": None, "rss_mb": None, "vm_hwm_mb": None,
           "latency_ms": {q: None if not lat else round(percentile(lat, v), 3)
                          for q, v in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))}}
    why = [f"{len(errors)} errors; the first: {errors[0]}"] if errors else []
    if not n["ok"]:
        why.append("no valid request got 200")
    if rss:
        rss.done.set()
        rss.join()
        end_kb, cpu1 = rss.sample(), cpu_seconds(args.rss_pid)
        out["server_cpu_s"] = round(cpu1 - cpu0, 2) if cpu0 is not None and cpu1 is not None else None
        base = after_warmup_kb[0] if after_warmup_kb else None
        change = (end_kb - base) * 100.0 / base if base and end_kb is not None else None
        out["rss_mb"] = {"after_warmup": mb(base), "end": mb(end_kb), "max": mb(max(rss.kb, default=None)),
                         "change_pct": None if change is None else round(change, 2), "samples": len(rss.kb)}
        out["vm_hwm_mb"] = mb(read_status_kb(args.rss_pid, "VmHWM"))
        if rss.gone:
            why.append(f"process {args.rss_pid} ended during the run")
        elif change is None:
            why.append("no RSS sample after warm-up or at the end")
        elif abs(change) > args.rss_tolerance:
            why.append(f"RSS changed {change:+.2f}% from after warm-up ({mb(base)} MB) to the end ({mb(end_kb)} MB), "
                       f"over --rss-tolerance {args.rss_tolerance}%")
    print(json.dumps(out), flush=True)
    for w in why:
        print(f"soak_serve: FAIL: {w}", file=sys.stderr)
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
