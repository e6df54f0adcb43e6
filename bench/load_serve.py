#!/usr/bin/env python3
"""Load test for `wristssl serve`: throughput and latency at several concurrency levels, and the server's memory.

    bench/load_serve.py http://127.0.0.1:8080 samples/grazpedwri-dx/images/0004_0542630449_01_WRI-L1_M003.png \
        --requests 1000 --concurrency 1,4,16 [--path /v1/predict] [--token T] [--rss-pid PID]
        [--warmup N] [--method GET --path /info] [--cafile CERT.pem | --insecure] (https)

For each concurrency level C, C threads (each with its own keep-alive connection, http.client) share --requests
requests, every one POSTing FILE's bytes to --path. One JSON line per level on standard output:
  requests, ok, errors (non-200 answers and transport failures), errors_by_kind (HTTP status or exception
  name: count; a full queue answers 503), first_error, wall_s,
  throughput_rps (all requests / wall time), ok_rps, latency_ms {p50, p90, p99, mean, max} over the 200 answers
  (percentiles interpolate linearly between order statistics, as numpy's default does),
  and with --rss-pid the server's VmRSS sampled every 0.5 s during the level: rss_mb {min, max, start, end,
  samples} and vm_hwm_mb (its lifetime peak), to show whether memory stays flat from level to level.
Exit status: 0 when every request got 200, 1 when any failed, 2 on bad arguments.
Python 3 standard library only, so any python3 runs it.
"""
import argparse
import http.client
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

RSS_PERIOD_S = 0.5
# Failures that mean the server closed a kept-alive connection before answering our request (over TLS the close
# shows as SSLEOFError while sending); one retry on a fresh connection is what browsers and urllib3 do, and is not
# the server failing the request. A failure on a fresh connection is counted.
STALE_CONNECTION = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ssl.SSLEOFError)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url", help="server base URL, e.g. http://127.0.0.1:8080")
    p.add_argument("file", help="image sent as the request body (PNG, JPEG or DICOM)")
    p.add_argument("--requests", type=int, default=1000, help="requests per concurrency level (default 1000)")
    p.add_argument("--concurrency", default="1,4,16", help="comma-separated thread counts (default 1,4,16)")
    p.add_argument("--path", default="/v1/predict", help="request path and query (default /v1/predict)")
    p.add_argument("--method", default="POST", choices=["POST", "GET"], help="GET sends no body (e.g. --path /info)")
    p.add_argument("--token", default="", help="sent as Authorization: Bearer TOKEN")
    p.add_argument("--rss-pid", type=int, default=0, help="sample this process's VmRSS during each level")
    p.add_argument("--warmup", type=int, default=0, help="uncounted requests on one connection before the first level")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take (default 120)")
    p.add_argument("--cafile", default="", help="https: trust this CA or self-signed certificate (PEM)")
    p.add_argument("--insecure", action="store_true", help="https: do not verify the server's certificate")
    a = p.parse_args(argv)
    try:
        a.levels = [int(c) for c in a.concurrency.split(",")]
    except ValueError:
        p.error(f"--concurrency '{a.concurrency}' is not a comma-separated list of integers")
    if not a.levels or min(a.levels) < 1:
        p.error(f"--concurrency '{a.concurrency}': every level must be at least 1")
    if a.requests < 1:
        p.error(f"--requests {a.requests}: must be at least 1")
    u = urllib.parse.urlsplit(a.url)
    if u.scheme not in ("http", "https") or not u.hostname:
        p.error(f"url '{a.url}' is not http://HOST[:PORT] or https://HOST[:PORT]")
    a.scheme, a.host, a.port = u.scheme, u.hostname, u.port
    # A base URL with a path (behind a reverse proxy) prefixes --path.
    a.target = u.path.rstrip("/") + (a.path if a.path.startswith("/") else "/" + a.path)
    if not os.path.isfile(a.file):
        p.error(f"file '{a.file}' does not exist")
    if a.rss_pid and not os.path.exists(f"/proc/{a.rss_pid}/status"):
        p.error(f"--rss-pid {a.rss_pid}: /proc/{a.rss_pid}/status does not exist (no such process, or not Linux)")
    return a


def read_status_kb(pid, field):
    """A `field:   N kB` line of /proc/PID/status, in kB; None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples_kb, self.gone = pid, [], False
        self.stop_event = threading.Event()

    def sample(self):
        kb = read_status_kb(self.pid, "VmRSS")
        if kb is None:
            self.gone = True
        else:
            self.samples_kb.append(kb)

    def run(self):
        while not self.stop_event.wait(RSS_PERIOD_S):
            self.sample()

    def finish(self):
        self.stop_event.set()
        self.join()
        self.sample()
        s = self.samples_kb
        out = {"rss_mb": {"min": round(min(s) / 1024, 1), "max": round(max(s) / 1024, 1),
                          "start": round(s[0] / 1024, 1), "end": round(s[-1] / 1024, 1), "samples": len(s)}
               if s else None}
        hwm = read_status_kb(self.pid, "VmHWM")
        out["vm_hwm_mb"] = round(hwm / 1024, 1) if hwm is not None else None
        if self.gone:
            out["rss_error"] = f"process {self.pid} ended during the level"
        return out


def percentile(sorted_values, q):
    """Linear interpolation between order statistics (numpy's default), q in [0, 100]."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class Client:
    """One thread's keep-alive connection; http.client reopens it by itself after a `Connection: close`."""

    def __init__(self, args, body):
        if args.scheme == "https":
            ctx = ssl.create_default_context(cafile=args.cafile or None)
            if args.insecure:
                ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            self.conn = http.client.HTTPSConnection(args.host, args.port, timeout=args.timeout, context=ctx)
        else:
            self.conn = http.client.HTTPConnection(args.host, args.port, timeout=args.timeout)
        self.args, self.body = args, body
        self.headers = {"Content-Type": "application/octet-stream"} if args.method == "POST" else {}
        if args.token:
            self.headers["Authorization"] = f"Bearer {args.token}"
        self.used = False

    def send_once(self):
        body = self.body if self.args.method == "POST" else None
        self.conn.request(self.args.method, self.args.target, body=body, headers=self.headers)
        resp = self.conn.getresponse()
        data = resp.read()
        return resp.status, data

    def request(self):
        """(status or None, error text or None)."""
        reused = self.used and self.conn.sock is not None
        self.used = True
        try:
            status, data = self.send_once()
        except STALE_CONNECTION:
            self.conn.close()
            if not reused:
                raise
            status, data = self.send_once()
        if status == 200:
            return status, None
        return status, f"HTTP {status}: {data[:200].decode('utf-8', 'replace')}"

    def close(self):
        self.conn.close()


def run_level(args, body, concurrency):
    lock = threading.Lock()
    next_index = [0]
    latencies_ms, errors, error_kinds = [], [], {}

    def worker():
        client = Client(args, body)
        try:
            while True:
                with lock:
                    if next_index[0] >= args.requests:
                        return
                    next_index[0] += 1
                t0 = time.perf_counter()
                try:
                    status, err = client.request()
                except (OSError, http.client.HTTPException) as e:
                    client.close()
                    status, err = None, f"{type(e).__name__}: {e}"
                ms = (time.perf_counter() - t0) * 1000.0
                with lock:
                    if err is None:
                        latencies_ms.append(ms)
                    else:
                        errors.append(err)
                        kind = str(status) if status is not None else err.split(":")[0]
                        error_kinds[kind] = error_kinds.get(kind, 0) + 1
        finally:
            client.close()

    sampler = RssSampler(args.rss_pid) if args.rss_pid else None
    if sampler:
        sampler.sample()
        sampler.start()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0

    lat = sorted(latencies_ms)
    r3 = lambda x: None if x is None else round(x, 3)  # noqa: E731
    out = {"concurrency": concurrency, "requests": args.requests, "ok": len(lat), "errors": len(errors),
           "errors_by_kind": error_kinds, "first_error": errors[0] if errors else None, "wall_s": round(wall, 3),
           "throughput_rps": round(args.requests / wall, 2), "ok_rps": round(len(lat) / wall, 2),
           "latency_ms": {"p50": r3(percentile(lat, 50)), "p90": r3(percentile(lat, 90)),
                          "p99": r3(percentile(lat, 99)), "mean": r3(sum(lat) / len(lat) if lat else None),
                          "max": r3(lat[-1] if lat else None)}}
    if sampler:
        out.update(sampler.finish())
    return out


def main(argv):
    args = parse_args(argv)
    with open(args.file, "rb") as f:
        body = f.read()
    if args.warmup:
        client = Client(args, body)
        for _ in range(args.warmup):
            try:
                _, err = client.request()
            except (OSError, http.client.HTTPException) as e:
                err = f"{type(e).__name__}: {e}"
            if err:
                print(f"load_serve: warm-up request failed: {err}", file=sys.stderr)
                return 1
        client.close()
    failed = False
    for c in args.levels:
        line = {"url": args.url, "path": args.target, "file": args.file, "bytes": len(body)}
        line.update(run_level(args, body, c))
        print(json.dumps(line), flush=True)
        failed = failed or line["errors"] > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
