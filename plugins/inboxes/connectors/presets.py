"""Provider presets: the "provider" choice of the mailbox form fills server, port and security.

Values are the providers' published client settings (incoming IMAP/POP3 and outgoing SMTP).
``note`` tells the administrator what the provider demands beyond a password (an app password,
or OAuth2, which a later version supports through ``auth=xoauth2``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from plugins.inboxes.connectors.base import Protocol, Security


@dataclass(frozen=True)
class ServerPreset:
    host: str
    port: int
    security: Security


@dataclass(frozen=True)
class Provider:
    key: str
    name: str
    imap: ServerPreset | None
    pop3: ServerPreset | None
    smtp: ServerPreset | None
    domains: tuple[str, ...] = ()  # addresses at these domains suggest this provider
    note: object = None  # translatable
    needs_oauth: bool = False  # plain passwords are refused by the provider

    def server(self, protocol: Protocol | str) -> ServerPreset | None:
        return {"imap": self.imap, "pop3": self.pop3, "smtp": self.smtp}[str(protocol)]


SSL, STARTTLS = Security.SSL, Security.STARTTLS

APP_PASSWORD = _l("Use an app password: the account password is refused when two-step verification is on.")
MICROSOFT_OAUTH = _l("Microsoft accepts only OAuth2 sign-in for IMAP and POP3; a password alone is refused.")

PROVIDERS: dict[str, Provider] = {
    p.key: p
    for p in (
        Provider(
            "gmail",
            "Gmail / Google Workspace",
            ServerPreset("imap.gmail.com", 993, SSL),
            ServerPreset("pop.gmail.com", 995, SSL),
            ServerPreset("smtp.gmail.com", 465, SSL),
            ("gmail.com", "googlemail.com"),
            APP_PASSWORD,
        ),
        Provider(
            "outlook",
            "Outlook.com / Hotmail",
            ServerPreset("outlook.office365.com", 993, SSL),
            ServerPreset("outlook.office365.com", 995, SSL),
            ServerPreset("smtp-mail.outlook.com", 587, STARTTLS),
            (
                "outlook.com",
                "outlook.es",
                "outlook.it",
                "hotmail.com",
                "hotmail.es",
                "hotmail.it",
                "live.com",
                "msn.com",
            ),
            MICROSOFT_OAUTH,
            needs_oauth=True,
        ),
        Provider(
            "office365",
            "Microsoft 365 / Exchange Online",
            ServerPreset("outlook.office365.com", 993, SSL),
            ServerPreset("outlook.office365.com", 995, SSL),
            ServerPreset("smtp.office365.com", 587, STARTTLS),
            (),
            MICROSOFT_OAUTH,
            needs_oauth=True,
        ),
        Provider(
            "yahoo",
            "Yahoo Mail",
            ServerPreset("imap.mail.yahoo.com", 993, SSL),
            ServerPreset("pop.mail.yahoo.com", 995, SSL),
            ServerPreset("smtp.mail.yahoo.com", 465, SSL),
            ("yahoo.com", "yahoo.es", "yahoo.it", "ymail.com"),
            APP_PASSWORD,
        ),
        Provider(
            "icloud",
            "iCloud Mail",
            ServerPreset("imap.mail.me.com", 993, SSL),
            None,
            ServerPreset("smtp.mail.me.com", 587, STARTTLS),
            ("icloud.com", "me.com", "mac.com"),
            APP_PASSWORD,
        ),
        Provider(
            "zoho",
            "Zoho Mail",
            ServerPreset("imap.zoho.com", 993, SSL),
            ServerPreset("pop.zoho.com", 995, SSL),
            ServerPreset("smtp.zoho.com", 465, SSL),
            ("zoho.com", "zohomail.com"),
        ),
        Provider(
            "zoho_eu",
            "Zoho Mail (EU)",
            ServerPreset("imap.zoho.eu", 993, SSL),
            ServerPreset("pop.zoho.eu", 995, SSL),
            ServerPreset("smtp.zoho.eu", 465, SSL),
            ("zohomail.eu",),
        ),
        Provider(
            "ionos_es",
            "IONOS (España)",
            ServerPreset("imap.ionos.es", 993, SSL),
            ServerPreset("pop.ionos.es", 995, SSL),
            ServerPreset("smtp.ionos.es", 465, SSL),
        ),
        Provider(
            "hostinger",
            "Hostinger",
            ServerPreset("imap.hostinger.com", 993, SSL),
            ServerPreset("pop.hostinger.com", 995, SSL),
            ServerPreset("smtp.hostinger.com", 465, SSL),
        ),
        Provider(
            "infomaniak",
            "Infomaniak",
            ServerPreset("mail.infomaniak.com", 993, SSL),
            ServerPreset("mail.infomaniak.com", 995, SSL),
            ServerPreset("mail.infomaniak.com", 465, SSL),
            ("ik.me", "etik.com"),
        ),
        Provider(
            "aruba",
            "Aruba (posta del dominio)",
            ServerPreset("imaps.aruba.it", 993, SSL),
            ServerPreset("pop3s.aruba.it", 995, SSL),
            ServerPreset("smtps.aruba.it", 465, SSL),
            ("aruba.it",),
        ),
        Provider(
            "aruba_pec",
            "Aruba PEC",
            ServerPreset("imaps.pec.aruba.it", 993, SSL),
            ServerPreset("pop3s.pec.aruba.it", 995, SSL),
            ServerPreset("smtps.pec.aruba.it", 465, SSL),
            ("pec.it",),
        ),
        Provider(
            "legalmail",
            "Legalmail PEC (InfoCert)",
            ServerPreset("mbox.cert.legalmail.it", 993, SSL),
            ServerPreset("mbox.cert.legalmail.it", 995, SSL),
            ServerPreset("sendm.cert.legalmail.it", 465, SSL),
            ("legalmail.it",),
        ),
        Provider(
            "postecert",
            "Poste Italiane PEC",
            ServerPreset("imaps.postecert.it", 993, SSL),
            ServerPreset("pop3s.postecert.it", 995, SSL),
            ServerPreset("smtps.postecert.it", 465, SSL),
            ("postecert.it",),
        ),
        Provider(
            "libero",
            "Libero Mail",
            ServerPreset("imapmail.libero.it", 993, SSL),
            ServerPreset("popmail.libero.it", 995, SSL),
            ServerPreset("smtp.libero.it", 465, SSL),
            ("libero.it", "inwind.it", "iol.it", "blu.it"),
        ),
        Provider(
            "virgilio",
            "Virgilio Mail",
            ServerPreset("in.virgilio.it", 993, SSL),
            ServerPreset("in.virgilio.it", 995, SSL),
            ServerPreset("out.virgilio.it", 465, SSL),
            ("virgilio.it",),
        ),
    )
}


def provider(key: str) -> Provider | None:
    return PROVIDERS.get(key)


def provider_for_address(address: str) -> Provider | None:
    """The provider whose consumer domain ``address`` belongs to (None for a company domain)."""
    domain = address.rpartition("@")[2].strip().lower().rstrip(".")
    if not domain:
        return None
    for candidate in PROVIDERS.values():
        if domain in candidate.domains:
            return candidate
    return None


def choices(protocol: Protocol | str) -> list[tuple[str, str]]:
    """``(key, name)`` of the providers offering ``protocol``, for a select field."""
    return [(p.key, p.name) for p in PROVIDERS.values() if p.server(protocol) is not None]
