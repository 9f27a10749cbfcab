"""Peak memory of one JMAP request whose answer is huge: a gzip bomb, or a large answer plain or gzipped.

    python bench/answer_memory.py bomb 1000      # gzip of 1000 MB of zeros (1 MB on the wire)
    python bench/answer_memory.py plain 300      # a 300 MB JSON answer
    python bench/answer_memory.py gzipped 300    # the same, gzip-encoded
    python bench/answer_memory.py values 40      # a 40 MB `/get` list of tiny values ([0,0,...]), plain

A loopback server in another process (so that its copy of the body does not count) answers one `Mailbox/get`
with it; this process sends the request with the connector's JmapClient and prints its peak RSS. Figures for
transport.py's MAX_ANSWER_BYTES (issue 18): an answer is held whole once decoded, so the peak is the decoded
answer, up to the cap, over what the process held before.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SESSION = (
    b'{"capabilities": {"urn:ietf:params:jmap:core": {"maxSizeRequest": 10000000, "maxConcurrentRequests": 4,'
    b' "maxCallsInRequest": 16, "maxObjectsInGet": 500}, "urn:ietf:params:jmap:mail": {}},'
    b' "accounts": {"a": {"name": "a", "isPersonal": true, "isReadOnly": false,'
    b' "accountCapabilities": {"urn:ietf:params:jmap:mail": {}}}},'
    b' "primaryAccounts": {"urn:ietf:params:jmap:mail": "a"}, "username": "a", "apiUrl": "/api",'
    b' "downloadUrl": "/d/{accountId}/{blobId}/{name}?t={type}", "uploadUrl": "/u", "eventSourceUrl": "/e",'
    b' "state": "s"}'
)
HEAD = b'{"methodResponses": [["Mailbox/get", {"accountId": "a", "state": "1", "list": [], "notFound": [], "x": "'
TAIL = b'"}, "m"]], "sessionState": "s"}'


def body(kind: str, size: int) -> bytes:
    if kind == "bomb":
        gzip = zlib.compressobj(9, zlib.DEFLATED, 31)
        return b"".join([gzip.compress(b"\0" * 1_000_000) for _ in range(size // 1_000_000)] + [gzip.flush()])
    if kind == "values":
        start = b'{"methodResponses": [["Mailbox/get", {"accountId": "a", "state": "1", "notFound": [], "list": [0'
        return start + b",0" * ((size - len(start) - 30) // 2) + b']}, "m"]], "sessionState": "s"}'
    filler = size - len(HEAD) - len(TAIL)
    if kind == "plain":
        return HEAD + b"x" * filler + TAIL
    gzip = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = [gzip.compress(HEAD)] + [gzip.compress(b"x" * 1_000_000) for _ in range(filler // 1_000_000)]
    return b"".join([*parts, gzip.compress(b"x" * (filler % 1_000_000) + TAIL), gzip.flush()])


def serve(kind: str, size: int) -> None:
    from unit_tests.loopback import LoopbackHandler, loopback_server

    answer = body(kind, size)

    class Handler(LoopbackHandler):
        def do_GET(self) -> None:
            self.send_head(200, len(SESSION), "application/json")
            self.wfile.write(SESSION)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if kind not in ("plain", "values"):
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            try:
                self.wfile.write(answer)
            except OSError:  # refused: the client closed the connection
                self.close_connection = True

    with loopback_server(Handler) as httpd:
        print(httpd.server_port, len(answer), flush=True)
        time.sleep(600)


def measure(kind: str, size_mb: int) -> None:
    from source_jmap.jmap import BasicCredentials, JmapClient, MethodCall
    from source_jmap.jmap.errors import JmapError

    server = subprocess.Popen([sys.executable, __file__, kind, str(size_mb), "serve"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert server.stdout is not None
        port, wire = server.stdout.readline().split()
        client = JmapClient(f"http://127.0.0.1:{port}/session", BasicCredentials("u", "p"))  # ignore-https-check
        client.session  # noqa: B018 - fetched before the measurement
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        try:
            responses = client.call([MethodCall("Mailbox/get", {"accountId": "a", "ids": None}, "m")], [])
            listed = len(responses["m"].get("list", ()))  # the /get list, as the engine takes it
            outcome = f"read ({responses.size / 1e6:.0f} MB, a list of {listed})"
        except JmapError as error:
            outcome = f"refused: {error}"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{kind} of {size_mb} MB decoded ({int(wire) / 1e6:.1f} MB on the wire): peak RSS {peak:.0f} MB, "
              f"{before:.0f} MB before the request; {outcome}")
    finally:
        server.kill()


if __name__ == "__main__":
    if len(sys.argv) > 3:
        serve(sys.argv[1], int(sys.argv[2]) * 1_000_000)
    else:
        measure(sys.argv[1], int(sys.argv[2]))
