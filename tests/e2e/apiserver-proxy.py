#!/usr/bin/env python3
"""A TLS-terminating proxy in front of the local cluster's API server, for one controller only
(tests/e2e/chaos.rs): it plays the network faults of issue 14 between that controller and the
API server while every other client talks to the API server directly.

  apiserver-proxy.py LISTEN_PORT UPSTREAM_URL CERT KEY CA MODE_FILE LOG_FILE

MODE_FILE holds one word, read whenever it matters:
  pass       bytes flow both ways
  blackhole  what is sent either way is dropped and new connections never finish their TLS
             handshake, as packets lost in a partition
  503        live connections are cut; each request on a new one is answered
             503 Service Unavailable, as an overloaded or restarting API server does
LOG_FILE gets one line per request the controller sent, when it arrived:
`<unix time> <forwarded|dropped|answered-503> <METHOD> <path>`, so the test can tell whether
this controller tried to write once another could hold the Lease.

The proxy presents the API server's own certificate (IP:127.0.0.1), so the controller's
kubeconfig needs only another port.
"""
import socket
import ssl
import sys
import threading
import time
import urllib.parse

listen_port, upstream_url, cert, key, ca, mode_file, log_file = sys.argv[1:8]
upstream = urllib.parse.urlparse(upstream_url)
log_lock = threading.Lock()
live = set()
live_lock = threading.Lock()


def mode():
    try:
        with open(mode_file) as f:
            return f.read().strip() or "pass"
    except FileNotFoundError:
        return "pass"


def wait_while_blackholed():
    while mode() == "blackhole":
        time.sleep(0.05)


def log_request(fate, head):
    request_line = head.split(b"\r\n", 1)[0].rsplit(b" ", 1)[0].decode(errors="replace")
    with log_lock, open(log_file, "a") as f:
        f.write(f"{time.time():.3f} {fate} {request_line}\n")


def read_head(conn, buffer):
    """Reads one HTTP/1.1 message head; returns (head, rest) or (None, b"") at EOF."""
    while b"\r\n\r\n" not in buffer:
        chunk = conn.recv(65536)
        if not chunk:
            return None, b""
        buffer += chunk
    head, rest = buffer.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", rest


def content_length(head):
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
        if name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower():
            return -1
    return 0


def fill(conn, rest, length):
    """`rest` read on until it holds at least `length` bytes."""
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("message cut short")
        rest += chunk
    return rest


def read_body(conn, rest, length):
    """The body after a head (Content-Length or chunked) and what follows it."""
    if length >= 0:
        rest = fill(conn, rest, length)
        return rest[:length], rest[length:]
    body = b""
    while True:
        while b"\r\n" not in rest:
            rest = fill(conn, rest, len(rest) + 1)
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        rest = fill(conn, rest, size + 2)
        body += size_line + b"\r\n" + rest[: size + 2]
        rest = rest[size + 2 :]
        if size == 0:
            return body, rest


def requests_to_upstream(client, server):
    """Client to API server, request by request (each logged), dropped while black-holed."""
    rest = b""
    while True:
        head, rest = read_head(client, rest)
        if head is None:
            break
        body, rest = read_body(client, rest, content_length(head))
        now = mode()
        if now == "503":
            break
        if now == "blackhole":
            log_request("dropped", head)
            continue
        log_request("forwarded", head)
        server.sendall(head + body)


def answers_to_client(server, client):
    while True:
        chunk = server.recv(65536)
        if not chunk:
            break
        now = mode()
        if now == "503":
            break
        if now != "blackhole":
            client.sendall(chunk)


def answer_503(client):
    rest = b""
    body = b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable","code":503}'
    while True:
        head, rest = read_head(client, rest)
        if head is None:
            return
        _, rest = read_body(client, rest, content_length(head))
        log_request("answered-503", head)
        client.sendall(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )


def close(*conns):
    for c in conns:
        try:
            c.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        c.close()


def handle(raw, server_ctx, client_ctx):
    wait_while_blackholed()  # the TLS handshake does not finish in a black hole
    try:
        client = server_ctx.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError):
        raw.close()
        return
    if mode() == "503":
        try:
            answer_503(client)
        except (OSError, ValueError, ConnectionError):
            pass
        close(client)
        return
    try:
        server = client_ctx.wrap_socket(
            socket.create_connection((upstream.hostname, upstream.port)),
            server_hostname=upstream.hostname,
        )
    except OSError:
        close(client)
        return
    with live_lock:
        live.add((client, server))

    def pump(job, *args):
        try:
            job(*args)
        except (OSError, ValueError, ConnectionError):
            pass
        close(client, server)

    threading.Thread(target=pump, args=(answers_to_client, server, client), daemon=True).start()
    pump(requests_to_upstream, client, server)
    with live_lock:
        live.discard((client, server))


def cut_on_503():
    """Entering 503 cuts the live connections: the client must come back and meet the 503s."""
    last = mode()
    while True:
        now = mode()
        if now == "503" and last != "503":
            with live_lock:
                for pair in list(live):
                    close(*pair)
        last = now
        time.sleep(0.05)


def main():
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server_ctx.set_alpn_protocols(["http/1.1"])
    client_ctx = ssl.create_default_context(cafile=ca)
    client_ctx.set_alpn_protocols(["http/1.1"])
    listener = socket.create_server(("127.0.0.1", int(listen_port)))
    threading.Thread(target=cut_on_503, daemon=True).start()
    print("ready", flush=True)
    while True:
        raw, _ = listener.accept()
        threading.Thread(target=handle, args=(raw, server_ctx, client_ctx), daemon=True).start()


if __name__ == "__main__":
    main()
