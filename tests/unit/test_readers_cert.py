"""Certificates: each certificate is a CertificateThumbprint, the SHA-1 of its DER bytes (CONTRACT.md "Inputs")."""

from __future__ import annotations

import datetime
import hashlib
import io

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.core.model import FIELD_TYPE, FileProblem, RawRow
from shared.readers import read


def make_cert(cn: str) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1234)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


@pytest.fixture(scope="module")
def certs() -> list[x509.Certificate]:
    return [make_cert("one.example"), make_cert("two.example")]


def thumb(c: x509.Certificate) -> str:
    return hashlib.sha1(c.public_bytes(serialization.Encoding.DER), usedforsecurity=False).hexdigest()


def items(data: bytes, name: str) -> tuple[str, list]:
    r = read(io.BytesIO(data), name)
    return r.format, list(r)


def test_der_certificate(certs):
    der = certs[0].public_bytes(serialization.Encoding.DER)
    fmt, out = items(der, "vendor.cer")
    assert fmt == "certificate"
    assert out == [RawRow(1, {"value": thumb(certs[0]), FIELD_TYPE: "CertificateThumbprint"})]
    # Content decides, not the name.
    assert items(der, "blob.bin")[0] == "certificate"


def test_pem_after_a_text_preamble_and_several_blocks(certs):
    preamble = b"Certificate:\n    Data:\n        Serial: 00:c3:4f:aa:bb:cc:dd:ee:ff:00:11\n"
    pems = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    name = "a" * 64 + ".pem"  # a hash-like file name is never the thumbprint
    fmt, out = items(preamble + pems, name)
    assert fmt == "certificate"
    assert [(r.line, r.value) for r in out] == [(4, thumb(certs[0])), (4 + pems.count(b"\n") // 2, thumb(certs[1]))]


def test_crlf_pem_and_trailing_newline_der(certs):
    pem = certs[0].public_bytes(serialization.Encoding.PEM).replace(b"\n", b"\r\n")
    assert [r.value for r in items(pem, "x.crt")[1]] == [thumb(certs[0])]
    der = certs[1].public_bytes(serialization.Encoding.DER) + b"\n"
    assert [r.value for r in items(der, "x.der")[1]] == [thumb(certs[1])]


def test_certificate_name_without_certificate_is_a_file_problem():
    fmt, out = items(b"hello\n", "x.pem")
    assert fmt == "certificate"
    assert len(out) == 1 and isinstance(out[0], FileProblem)


def test_truncated_der_is_a_file_problem(certs):
    der = certs[0].public_bytes(serialization.Encoding.DER)
    _, out = items(der[:-10], "x.cer")
    assert len(out) == 1 and isinstance(out[0], FileProblem)
