"""String formats kube-apiserver checks in custom resources (k8s.io/kube-openapi `strfmt`).

Names are keyed without dashes or underscores, as kube-openapi normalises them;
an unknown format passes, as it does on kube.
"""
from __future__ import annotations

import ipaddress
import re
from typing import Callable

from kapi.api.validation import dns1123_label_errors, dns1123_subdomain_errors


_LD = r"[^\W_]"  # Go's [a-zA-Z0-9\p{S}\p{L}], less the symbols
_HOSTNAME = re.compile(rf"({_LD}((-?{_LD}{{0,62}})?)|({_LD}(((?:{_LD}|-){{0,61}}{_LD})?)(\.)){{1,}}"
                       rf"({_LD})(-?{_LD}){{1,62}})")
_UUID = {
    "uuid": r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}",
    "uuid3": r"[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}",
    "uuid4": r"[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}",
    "uuid5": r"[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}",
}
_OCTET = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*"
_RGB = re.compile(rf"rgb\({_OCTET},{_OCTET},{_OCTET}\)")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?:(?:\1[0-9A-Fa-f]{2}){2}"
                  r"|(?:\1[0-9A-Fa-f]{2}){14})?|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}"
                  r"(?:\.[0-9A-Fa-f]{4}|(?:\.[0-9A-Fa-f]{4}){7})?")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR = rf'(?:{_ATOM}(?:\.{_ATOM})*|"[^"\\]*")@(?:{_ATOM}(?:\.{_ATOM})*|\[[^\]]*\])'
_EMAIL = re.compile(rf'\s*(?:{_ADDR}|[^<>]*<{_ADDR}>)\s*')
_CREDIT_CARD = re.compile(r"4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]"
                          r"|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])"
                          r"[0-9]{11}|(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14}")
_GO_DURATION = re.compile(r"[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_SCALA_DURATION = re.compile(r"\s*(?:\d+\s*[A-Za-zµ]+\s*)+")
_DURATION_UNITS = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"), ("m", "min"),
                   ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))
_QUANTITY = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")


def _is_date(value: str) -> bool:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return False
    year, month, day = (int(p) for p in value.split("-"))
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= month <= 12 and 1 <= day <= days[month - 1]


def _is_date_time(value: str) -> bool:
    parts = value.lower().split("t")
    if len(value) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    match = _TIME.fullmatch(parts[1])
    if match is None:
        return False
    return match.group(1) <= "23" and match.group(2) <= "59" and match.group(3) <= "59"


def _is_duration(value: str) -> bool:
    if _GO_DURATION.fullmatch(value):
        return True
    if not _SCALA_DURATION.fullmatch(value):
        return False
    for match in re.finditer(r"(\d+)\s*([A-Za-zµ]+)", value):
        unit = match.group(2).lower()
        if any(unit == v or unit.startswith(variants[-1]) for variants in _DURATION_UNITS for v in variants):
            return True
    return False


def _go_ip(value: str) -> bool:
    """Go's `net.ParseIP`: dotted quads without leading zeros, or IPv6 without a zone."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return "%" not in value


def _is_cidr(value: str) -> bool:
    addr, slash, bits = value.partition("/")
    if not slash or not bits.isdigit() or not bits.isascii() or not _go_ip(addr):
        return False
    return int(bits) <= (32 if ":" not in addr else 128)


def _is_request_uri(value: str) -> bool:
    """Go's `url.ParseRequestURI`, roughly: an absolute URI or an absolute path."""
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return False
    return bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value)) or value.startswith("/")


def _is_hostname(value: str) -> bool:
    return bool(_HOSTNAME.fullmatch(value)) and len(value.encode()) <= 255 and \
        all(len(p.encode()) <= 63 for p in value.split("."))


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _is_isbn(value: str, size: int) -> bool:
    clean = re.sub(r"[\s-]+", "", value)
    if size == 10 and re.fullmatch(r"[0-9]{9}X|[0-9]{10}", clean):
        total = sum((i + 1) * int(c) for i, c in enumerate(clean[:9]))
        return (total + (100 if clean[9] == "X" else 10 * int(clean[9]))) % 11 == 0
    if size == 13 and re.fullmatch(r"[0-9]{13}", clean):
        total = sum((1, 3)[i % 2] * int(c) for i, c in enumerate(clean[:12]))
        return int(clean[12]) == (10 - total % 10) % 10
    return False


def _is_credit_card(value: str) -> bool:
    digits = re.sub(r"[^0-9]+", "", value)
    return bool(_CREDIT_CARD.fullmatch(digits)) and _luhn(digits)


FORMATS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda v: bool(re.fullmatch(r"[0-9a-fA-F]{24}", v)),
    "uri": _is_request_uri,
    "email": lambda v: bool(_EMAIL.fullmatch(v)),
    "hostname": _is_hostname,
    "ipv4": lambda v: _go_ip(v) and "." in v,
    "ipv6": lambda v: _go_ip(v) and ":" in v,
    "cidr": _is_cidr,
    "mac": lambda v: bool(_MAC.fullmatch(v)),
    **{name: (lambda rx: lambda v: bool(re.fullmatch(rx, v, re.IGNORECASE)))(rx) for name, rx in _UUID.items()},
    "isbn": lambda v: _is_isbn(v, 10) or _is_isbn(v, 13),
    "isbn10": lambda v: _is_isbn(v, 10),
    "isbn13": lambda v: _is_isbn(v, 13),
    "creditcard": _is_credit_card,
    "ssn": lambda v: len(v) == 11 and bool(re.fullmatch(r"\d{3}[- ]?\d{2}[- ]?\d{4}", v)),
    "hexcolor": lambda v: bool(re.fullmatch(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", v)),
    "rgbcolor": lambda v: bool(_RGB.fullmatch(v)),
    "byte": lambda v: bool(_BASE64.fullmatch(v)),
    "password": lambda v: True,
    "date": _is_date,
    "duration": _is_duration,
    "datetime": _is_date_time,
    "quantity": lambda v: bool(_QUANTITY.fullmatch(v)),
    "k8sshortname": lambda v: not dns1123_label_errors(v),
    "k8slongname": lambda v: not dns1123_subdomain_errors(v),
}
