"""Certificate files -> one CertificateThumbprint RawRow per certificate (SHA-1 of the DER bytes).

Binary DER or PEM blocks, possibly after a text preamble (`openssl x509 -text` output). The
thumbprint Defender matches is the SHA-1 of the certificate's DER encoding (defender-api.md §4),
so hashlib is enough; the file name is never taken as a thumbprint. Certificates are small: the
reader refuses files over MAX_CERT_FILE_BYTES instead of holding them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterator
from typing import BinaryIO

from shared.core.model import FIELD_TYPE, FIELD_VALUE, FileProblem, IndicatorType, RawRow

MAX_CERT_FILE_BYTES = 4 * 1024 * 1024
_PEM = re.compile(
    rb"-----BEGIN (?:X509 |TRUSTED )?CERTIFICATE-----\s*(?P<body>[A-Za-z0-9+/=\s]*?)\s*"
    rb"-----END (?:X509 |TRUSTED )?CERTIFICATE-----"
)


def der_length(data: bytes) -> int | None:
    """Total length of the DER SEQUENCE at the start of `data`, or None if it is not one."""
    if len(data) < 2 or data[0] != 0x30:
        return None
    first = data[1]
    if first < 0x80:
        return 2 + first
    n = first & 0x7F
    if n == 0 or n > 4 or len(data) < 2 + n:
        return None
    return 2 + n + int.from_bytes(data[2 : 2 + n], "big")


def looks_like_der(prefix: bytes) -> bool:
    """A certificate is a SEQUENCE holding a SEQUENCE (tbsCertificate), both long-form lengths."""
    total = der_length(prefix)
    return total is not None and total > 64 and prefix[1] in (0x82, 0x83) and der_length(prefix[4:]) is not None


def has_pem(prefix: bytes) -> bool:
    return b"-----BEGIN CERTIFICATE-----" in prefix or b"-----BEGIN X509 CERTIFICATE-----" in prefix


def read_certificates(stream: BinaryIO) -> Iterator[RawRow | FileProblem]:
    data = stream.read(MAX_CERT_FILE_BYTES + 1)
    if len(data) > MAX_CERT_FILE_BYTES:
        yield FileProblem(f"certificate file larger than {MAX_CERT_FILE_BYTES} bytes")
        return
    if data[:1] == b"\x30":
        yield from _der_sequence(data)
        return
    found = False
    for match in _PEM.finditer(data):
        found = True
        line = data.count(b"\n", 0, match.start()) + 1
        try:
            der = base64.b64decode(b"".join(match.group("body").split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            yield FileProblem(f"PEM certificate block is not valid base64: {exc}", line=line, fatal=False)
            continue
        size = der_length(der)
        if size is None or size > len(der):
            yield FileProblem("PEM block does not hold a DER certificate", line=line, fatal=False)
            continue
        # A TRUSTED CERTIFICATE carries trust settings after the certificate: hash the certificate only.
        yield _row(line, der[:size])
    if not found:
        yield FileProblem("no certificate found (expected DER or a PEM CERTIFICATE block)")


def _der_sequence(data: bytes) -> Iterator[RawRow | FileProblem]:
    """One or more DER certificates back to back."""
    offset = 0
    while offset < len(data):
        if not data[offset:].strip(b"\x00 \t\r\n"):
            return  # padding after the last certificate
        size = der_length(data[offset:])
        if size is None or offset + size > len(data):
            yield FileProblem(f"truncated or malformed DER data at byte {offset}")
            return
        yield _row(1, data[offset : offset + size])
        offset += size


def _row(line: int, der: bytes) -> RawRow:
    thumbprint = hashlib.sha1(der, usedforsecurity=False).hexdigest()
    return RawRow(line, {FIELD_VALUE: thumbprint, FIELD_TYPE: IndicatorType.CertificateThumbprint.value})
