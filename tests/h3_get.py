"""An independent HTTP/3 client for the end-to-end tests: aioquic (RFC 9000,
RFC 9114) fetches paths from one server over one QUIC connection.

    python3 tests/h3_get.py HOST PORT PATH [PATH ...]

Requests run one after the other, in order. Prints one JSON object per
path on stdout: {"path", "status", "headers": [[name, value], ...],
"body_b64", "seconds", "peer_certificate_sha256", "peer_certificate_days",
"peer_certificate_key"}: the SHA-256 of the server's certificate as this
client received it in the handshake (hex), its validity period in days
and its key type ("ecdsa-p256", else the key class name). The certificate is not verified (the tests' origin
uses a self-signed one); the ALPN is "h3". Exits 1 with a message on stderr
if the connection fails.
"""

import asyncio
import base64
import hashlib
import json
import ssl
import sys
import time

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.waiting = {}

    async def get(self, authority, path):
        stream_id = self._quic.get_next_available_stream_id()
        self.http.send_headers(
            stream_id,
            [
                (b":method", b"GET"),
                (b":scheme", b"https"),
                (b":authority", authority.encode()),
                (b":path", path.encode()),
                (b"user-agent", b"livestack-tests-aioquic"),
            ],
            end_stream=True,
        )
        done = asyncio.get_running_loop().create_future()
        self.waiting[stream_id] = {"headers": [], "body": bytearray(), "done": done}
        self.transmit()
        return await done

    def quic_event_received(self, event):
        for h3_event in self.http.handle_event(event):
            entry = self.waiting.get(getattr(h3_event, "stream_id", None))
            if entry is None:
                continue
            if isinstance(h3_event, HeadersReceived):
                entry["headers"].extend(h3_event.headers)
            elif isinstance(h3_event, DataReceived):
                entry["body"].extend(h3_event.data)
            if getattr(h3_event, "stream_ended", False):
                del self.waiting[h3_event.stream_id]
                entry["done"].set_result(entry)


async def main(host, port, paths):
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN)
    configuration.verify_mode = ssl.CERT_NONE
    configuration.idle_timeout = 60.0
    authority = f"{host}:{port}"
    async with connect(
        host, port, configuration=configuration, create_protocol=Client
    ) as client:
        for path in paths:
            started = time.monotonic()
            entry = await asyncio.wait_for(client.get(authority, path), 30)
            headers = [[k.decode(), v.decode()] for k, v in entry["headers"]]
            certificate = client._quic.tls._peer_certificate
            cert_hash = hashlib.sha256(
                certificate.public_bytes(serialization.Encoding.DER)
            ).hexdigest()
            validity = certificate.not_valid_after_utc - certificate.not_valid_before_utc
            key = certificate.public_key()
            key_type = (
                "ecdsa-p256"
                if isinstance(key, ec.EllipticCurvePublicKey)
                and isinstance(key.curve, ec.SECP256R1)
                else type(key).__name__
            )
            status = next(int(v) for k, v in headers if k == ":status")
            print(
                json.dumps(
                    {
                        "path": path,
                        "status": status,
                        "headers": [h for h in headers if not h[0].startswith(":")],
                        "body_b64": base64.b64encode(bytes(entry["body"])).decode(),
                        "seconds": time.monotonic() - started,
                        "peer_certificate_sha256": cert_hash,
                        "peer_certificate_days": validity.total_seconds() / 86400,
                        "peer_certificate_key": key_type,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit("usage: h3_get.py HOST PORT PATH [PATH ...]")
    try:
        asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3:]))
    except Exception as e:  # noqa: BLE001 - one line for the test's message
        sys.exit(f"HTTP/3 client failed: {type(e).__name__}: {e}")
