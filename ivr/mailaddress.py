"""Whether a string is a plausible e-mail address, before it is stored as a recipient.

Deliverability cannot be known without asking the network (which the hotline must not do at
the prompt); what can be refused is what no SMTP server accepts: no ``@``, spaces, a display
name instead of an address, a domain without a dot.
"""

from __future__ import annotations

import re
from email.errors import HeaderParseError
from email.headerregistry import Address

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_mail_address(text: str) -> bool:
    """``name@host.tld`` with an ASCII local part and a dotted domain of DNS labels."""
    if len(text) > 254 or text != text.strip():
        return False
    local, at, domain = text.rpartition("@")
    if not at or not _LOCAL.match(local) or ".." in local or local.startswith("."):
        return False
    if local.endswith("."):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return False
    try:
        Address(addr_spec=text)  # what the outbox will put in the To: header
    except (HeaderParseError, ValueError, IndexError):
        return False
    return True
