#!/usr/bin/env python3
"""A TCP proxy on loopback for fault tests: forwards each connection to 127.0.0.1:TARGET, optionally throttling what
the client sends (--rate bytes per second) and cutting the connection (both sides closed, as a sender that
crashes or loses its network) once --cut-after bytes from the client have gone through.

    tcp_proxy.py PORT_FILE TARGET_PORT [--cut-after N] [--rate B]

It listens on a free port, writes the port number to PORT_FILE when ready, and serves until killed.
Python 3 standard library only.
"""
import argparse
import os
import socket
import threading
import time


def pipe(src, dst, limit, rate, on_cut):
    sent = 0
    try:
        while True:
            chunk = src.recv(4096 if not rate else max(1, min(4096, rate // 20)))
            if not chunk:
                break
            if limit is not None and sent + len(chunk) >= limit:
                dst.sendall(chunk[: max(0, limit - sent)])
                on_cut()
                return
            dst.sendall(chunk)
            sent += len(chunk)
            if rate:
                time.sleep(len(chunk) / rate)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(client, target, cut_after, rate):
    server = socket.create_connection(("127.0.0.1", target))

    def cut():
        for s in (client, server):
            try:
                s.shutdown(socket.SHUT_RDWR)  # wakes the other direction's recv, so the socket really closes
                s.close()
            except OSError:
                pass

    threading.Thread(target=pipe, args=(client, server, cut_after, rate, cut), daemon=True).start()
    threading.Thread(target=pipe, args=(server, client, None, 0, cut), daemon=True).start()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port_file")
    p.add_argument("target", type=int)
    p.add_argument("--cut-after", type=int, default=None)
    p.add_argument("--rate", type=int, default=0)
    a = p.parse_args()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(listener.getsockname()[1]))
    os.replace(a.port_file + ".tmp", a.port_file)
    while True:
        client, _ = listener.accept()
        serve(client, a.target, a.cut_after, a.rate)


if __name__ == "__main__":
    main()
