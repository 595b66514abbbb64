"""Return URLs (`url_back`, `url_success`, `url_failed`): only to the merchant's own hosts.

A return link is a courtesy, never proof of payment, but an open redirect on a payment
site is a phishing tool, so anything that is not plainly `http(s)://<allowed host>/...`
is refused rather than repaired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, unquote_plus, urlencode, urlsplit, urlunsplit

from .wire import signing

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


# ---------------------------------------------------------------------------------------------
# Signed outcomes on url_success / url_failed

OUTCOME_PARAMS = ("status", "foreign_id", "signature")


def outcome_message(*, status: str, foreign_id: str) -> str:
    """The signed text: `foreign_id=<rawurlencoded foreign_id>&status=<status>`.

    RFC 3986 percent-encoding of every byte but letters, digits and `-._~` (PHP's
    `rawurlencode`, Python's `quote(..., safe="")`), so both sides build the same bytes.
    """
    return f"foreign_id={quote(foreign_id, safe='')}&status={quote(status, safe='')}"


def outcome_signature(*, status: str, foreign_id: str, secret: str) -> str:
    return signing.sign(outcome_message(status=status, foreign_id=foreign_id).encode(), secret)


def signed_outcome(url: str, *, status: str, foreign_id: str, secret: str) -> str:
    """`url` with `status`, `foreign_id` and `signature` appended (lowercase hex HMAC-SHA512
    of `outcome_message` under the merchant's API secret); the URL's own query stays, any
    parameter of those names in it is replaced, and a fragment stays last."""
    parts = urlsplit(url)
    # The shop's own parameters stay byte for byte; only ours are (re)written.
    kept = [piece for piece in parts.query.split("&") if piece
            and unquote_plus(piece.partition("=")[0]) not in OUTCOME_PARAMS]
    ours = urlencode([("status", status), ("foreign_id", foreign_id),
                      ("signature", outcome_signature(status=status, foreign_id=foreign_id,
                                                      secret=secret))], quote_via=quote)
    query = "&".join([*kept, ours])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
