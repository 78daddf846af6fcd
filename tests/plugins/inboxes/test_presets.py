"""Provider presets fill server, port and security; an address at a consumer domain suggests its provider."""

from __future__ import annotations

import pytest

from plugins.inboxes.connectors import Protocol, Security
from plugins.inboxes.connectors.base import DEFAULT_PORTS
from plugins.inboxes.connectors.presets import PROVIDERS, choices, provider, provider_for_address


@pytest.mark.parametrize("key", sorted(PROVIDERS))
def test_every_preset_is_a_secure_standard_setting(key):
    found = PROVIDERS[key]
    assert found.imap is not None and found.smtp is not None
    for protocol in ("imap", "pop3"):
        server = found.server(protocol)
        if server is not None:
            assert server.security == Security.SSL
            assert server.port == DEFAULT_PORTS[(Protocol(protocol), Security.SSL)]
    assert (found.smtp.port, found.smtp.security) in ((465, Security.SSL), (587, Security.STARTTLS))
    assert all(host == host.lower() and "." in host for host in (found.imap.host, found.smtp.host))


def test_the_common_spanish_and_italian_providers_are_there():
    assert {"gmail", "outlook", "office365", "yahoo", "icloud", "zoho", "aruba", "aruba_pec", "libero"} <= set(
        PROVIDERS
    )
    assert {"ionos_es", "virgilio", "legalmail", "postecert"} <= set(PROVIDERS)
    assert provider("gmail").imap.host == "imap.gmail.com"
    assert provider("aruba").pop3.host == "pop3s.aruba.it"
    assert provider("nope") is None


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("Ana@GMAIL.com", "gmail"),
        ("x@hotmail.es", "outlook"),
        ("x@yahoo.it", "yahoo"),
        ("x@pec.it", "aruba_pec"),
        ("x@libero.it", "libero"),
        ("x@asesoria-garcia.es", None),
        ("not an address", None),
    ],
)
def test_a_consumer_address_suggests_its_provider(address, key):
    found = provider_for_address(address)
    assert (found.key if found else None) == key


def test_microsoft_and_google_say_what_they_need_beyond_a_password():
    assert provider("office365").needs_oauth and "OAuth2" in str(provider("office365").note)
    assert not provider("gmail").needs_oauth and "app password" in str(provider("gmail").note)


def test_choices_list_only_providers_of_that_protocol():
    assert "icloud" in dict(choices("imap")) and "icloud" not in dict(choices(Protocol.POP3))
