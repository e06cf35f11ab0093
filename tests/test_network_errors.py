"""Transport failures told apart (TLS, refused, DNS, timeout), each with the URL, masked,
and the fix; and no signed URL (signature=…) in stderr, the JSON document or the runs table.
The servers here are real sockets on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading

import pytest
import requests

from tests.conftest import invoke, query, runner

pytestmark = pytest.mark.usefixtures("exchange_env")

ETH = {"intent_id": "eth-1", "symbol": "ETHUSDT", "side": "BUY", "position_size_usd": 60,
       "confidence": 0.8}  # fmt: skip


@pytest.fixture(autouse=True)
def one_attempt(monkeypatch):
    monkeypatch.setenv("QTRADER_EXCHANGE_READ_RETRIES", "1")
    monkeypatch.setenv("QTRADER_EXCHANGE_TIMEOUT_S", "0.5")


def run_execute() -> tuple[int, str, dict]:
    assert invoke("pull-signals", "--from", "-", input=json.dumps(ETH)).exit_code == 0
    result = runner.invoke(__import__("qtrader.cli").cli.app, ["--json", "--testnet", "execute"])
    return result.exit_code, result.stderr, json.loads(result.stdout)


def _listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    return sock


def test_refused_connection(monkeypatch):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    monkeypatch.setenv("QTRADER_API_URL", f"http://127.0.0.1:{port}")
    code, stderr, doc = run_execute()
    assert code == 1
    assert f"connection refused by 127.0.0.1:{port}" in doc["error"]
    assert f"http://127.0.0.1:{port}/fapi/v1/exchangeInfo" in doc["error"]
    assert "is the proxy or emulator running, right port?" in doc["error"]
    assert doc["error"] in stderr


def test_dns_failure(monkeypatch):
    monkeypatch.setenv("QTRADER_API_URL", "https://fapi.binance.invalid")
    code, _, doc = run_execute()
    assert code == 1
    assert doc["error"].startswith(
        "Binance did not answer: cannot resolve the host name fapi.binance.invalid "
        "(https://fapi.binance.invalid/fapi/v1/exchangeInfo): check its spelling"
    )


def test_timeout(monkeypatch):
    sock = _listening_socket()  # accepts into the backlog, never answers
    try:
        monkeypatch.setenv("QTRADER_API_URL", f"http://127.0.0.1:{sock.getsockname()[1]}")
        code, _, doc = run_execute()
    finally:
        sock.close()
    assert code == 1
    assert "no answer from 127.0.0.1:" in doc["error"]
    assert "raise QTRADER_EXCHANGE_TIMEOUT_S" in doc["error"]


def _self_signed(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_file, key_file


def test_untrusted_tls_certificate(monkeypatch, tmp_path):
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    sock = _listening_socket()

    def serve():
        for _ in range(4):
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            try:
                context.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        monkeypatch.setenv("QTRADER_API_URL", f"https://127.0.0.1:{sock.getsockname()[1]}")
        code, _, doc = run_execute()
    finally:
        sock.close()
    assert code == 1
    assert "TLS certificate verification failed for https://127.0.0.1:" in doc["error"]
    assert "self-signed certificate" in doc["error"] or "self signed" in doc["error"]
    assert "REQUESTS_CA_BUNDLE" in doc["error"]


def test_signed_url_never_shown_or_stored(binance, db_path):
    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "Connection refused"))
    binance.fail_next("/fapi/v3/account", "GET", refused)
    code, stderr, doc = run_execute()
    assert code == 1
    assert "connection refused by demo-fapi.binance.com" in doc["error"]
    assert "/fapi/v3/account?" in doc["error"] and "signature=***" in doc["error"]
    stored = json.dumps(query(db_path, "SELECT * FROM runs"), default=str)
    everything = stderr + json.dumps(doc) + stored
    assert "signature=***" in stored
    signature = next(s for s in binance.sent if s.path == "/fapi/v3/account").params["signature"]
    assert signature not in everything
    assert "signature=" not in everything.replace("signature=***", "")
