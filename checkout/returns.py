"""Return URLs (`url_back`, `url_success`, `url_failed`): only to the merchant's own hosts.

A return link is a courtesy, never proof of payment, but an open redirect on a payment
site is a phishing tool, so anything that is not plainly `http(s)://<allowed host>/...`
is refused rather than repaired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

MAX_LENGTH = 2048
# Printable ASCII without space, backslash, quotes or angle brackets. Anything else either
# means something different to a browser than to urlsplit (backslashes, tabs, newlines
# are stripped or turned into slashes by the WHATWG parser) or hides a look-alike host.
_SAFE = re.compile(r"\A[!#$%&()*+,\-./0-9:;=?@A-Z\[\]^_`a-z{|}~]+\Z")
_HOSTNAME = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}"
                       r"[a-z0-9])?)*\Z")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ReturnUrlError(ValueError):
    """A return URL that does not lead to one of the merchant's hosts."""


def check(url: object, allowed_hosts: Iterable[str]) -> str:
    """`url` unchanged when it is an http(s) URL on one of `allowed_hosts`, else ReturnUrlError.

    An allowed host is `shop.example` (default port of either scheme) or `shop.example:8443`
    (that port only), as `merchants.normalise_return_host` stores it.
    """
    if not isinstance(url, str) or not url or len(url) > MAX_LENGTH:
        raise ReturnUrlError("the return address must be a web address")
    if not _SAFE.match(url):
        raise ReturnUrlError("the return address contains characters that are not allowed")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # unbalanced or non-IP brackets in the host
        raise ReturnUrlError("the return address has an invalid host") from exc
    if parts.scheme not in _DEFAULT_PORTS or not url.lower().startswith(parts.scheme + "://"):
        raise ReturnUrlError("the return address must start with https:// or http://")
    netloc = parts.netloc
    if "@" in netloc or not netloc:
        raise ReturnUrlError("the return address must not contain a user name")
    host = (parts.hostname or "").lower()
    if not _HOSTNAME.match(host):
        raise ReturnUrlError("the return address has an invalid host")
    try:
        port = parts.port
    except ValueError as exc:
        raise ReturnUrlError("the return address has an invalid port") from exc
    if host_allowed(host, port, parts.scheme, allowed_hosts):
        return url
    raise ReturnUrlError("the return address is not one of the shop's addresses")


def host_allowed(host: str, port: int | None, scheme: str,
                 allowed_hosts: Iterable[str]) -> bool:
    effective = port if port is not None else _DEFAULT_PORTS[scheme]
    for allowed in allowed_hosts:
        name, _, allowed_port = allowed.lower().partition(":")
        if name != host:
            continue
        if allowed_port:
            if allowed_port.isdigit() and int(allowed_port) == effective:
                return True
        elif effective == _DEFAULT_PORTS[scheme]:
            return True
    return False
