"""The activation provider contract, the plugin's hookspec, and callback signatures."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pluggy
import pytest

from plugins.pec import hookspecs
from plugins.pec.activation.contract import (
    ActivationProvider,
    ActivationRequest,
    ActivationResult,
    ActivationStatus,
    HolderData,
    InvalidCallback,
    ManualProvider,
    PostalAddress,
    ProviderRegistry,
)
from plugins.pec.activation.http_api import HttpActivationProvider
from plugins.pec.activation.signing import sign, verify


def make_request(
    request_id: str = "req-1", address: str = "mario.rossi@pec.example.it", **changes
) -> ActivationRequest:
    values = {
        "request_id": request_id,
        "address": address,
        "box_type": "standard",
        "mailbox_mb": 1024,
        "years": 1,
        "renewal": "manual",
        "holder": HolderData(
            kind="person",
            codice_fiscale="RSSMRA80A01H501U",
            email="mario.rossi@example.it",
            phone="+390646882031",
            first_name="Mario",
            last_name="Rossi",
            birth_date=date(1980, 1, 1),
            sex="M",
            birth_place="Roma",
            birth_provincia="RM",
        ),
        "holder_address": PostalAddress("Via del Corso 12", "00186", "Roma", "RM"),
        "reseller": "0000000129",
        "callback_url": None,
    }
    values.update(changes)
    return ActivationRequest(**values)


def test_a_request_travels_as_json_and_back_unchanged():
    request = make_request(callback_url="https://ventanilla.example/pec/callback")
    assert ActivationRequest.from_dict(json.loads(json.dumps(request.to_dict()))) == request


def test_a_malformed_request_is_an_error_the_provider_can_answer():
    data = make_request().to_dict()
    del data["holder"]
    with pytest.raises(KeyError):
        ActivationRequest.from_dict(data)


def test_a_result_travels_as_json_and_back_and_needs_a_time_zone():
    result = ActivationResult(
        "req-1",
        ActivationStatus.ACTIVE,
        reference="LP-1",
        activated_at=datetime(2026, 5, 1, 9, 30, tzinfo=UTC),
        expires_on=date(2027, 4, 30),
    )
    assert ActivationResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    naive = {**result.to_dict(), "activated_at": "2026-05-01T09:30:00"}
    with pytest.raises(ValueError):
        ActivationResult.from_dict(naive)
    with pytest.raises(ValueError):
        ActivationResult.from_dict({**result.to_dict(), "status": "maybe"})


def test_the_manual_provider_leaves_every_request_to_the_gestore():
    provider = ManualProvider.from_settings({})
    assert provider.submit(make_request()) == ActivationResult("req-1", ActivationStatus.PENDING)
    assert provider.status("req-1") is None
    assert not provider.calls_back
    with pytest.raises(InvalidCallback):
        provider.parse_callback({}, b"{}")


def test_a_provider_is_built_from_the_operator_s_settings():
    provider = HttpActivationProvider.from_settings(
        {"base_url": "https://api.gestore.example/v1/", "api_token": "t", "webhook_secret": "s", "other": "ignored"}
    )
    assert provider.base_url == "https://api.gestore.example/v1"
    assert provider.webhook_secrets == ("s",)
    with pytest.raises(ValueError, match="api_token, webhook_secret"):
        HttpActivationProvider.from_settings({"base_url": "https://api.gestore.example"})
    with pytest.raises(ValueError):
        HttpActivationProvider.from_settings({"base_url": "ftp://x", "api_token": "t", "webhook_secret": "s"})
    assert [s.name for s in HttpActivationProvider.settings if s.secret] == [
        "api_token",
        "webhook_secret",
        "previous_webhook_secret",
    ]


# --- the hookspec -----------------------------------------------------------------------


class ThirdPartyProvider(ActivationProvider):
    code = "acme"
    title = "Acme PEC"

    def submit(self, request):
        return ActivationResult(request.request_id, ActivationStatus.ACTIVE)


def plugin_manager(*plugins) -> pluggy.PluginManager:
    pm = pluggy.PluginManager("ventanilla")
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm


def test_packages_add_providers_through_the_plugin_s_hookspec():
    hookimpl = pluggy.HookimplMarker("ventanilla")

    class BuiltIn:
        @hookimpl
        def pec_activation_providers(self):
            return [ManualProvider, HttpActivationProvider]

    class ThirdParty:
        @hookimpl
        def pec_activation_providers(self):
            return [ThirdPartyProvider]

    pm = plugin_manager(BuiltIn(), ThirdParty())
    registry = ProviderRegistry.from_hook_results(pm.hook.pec_activation_providers())
    assert sorted(registry.providers) == ["acme", "http", "manual"]
    assert registry.get("acme").from_settings({}).submit(make_request()).status == ActivationStatus.ACTIVE


def test_two_providers_with_one_code_or_a_non_provider_are_refused():
    class Impostor(ThirdPartyProvider):
        pass

    with pytest.raises(ValueError, match="acme"):
        ProviderRegistry.from_hook_results([[ThirdPartyProvider], [Impostor]])
    with pytest.raises(TypeError):
        ProviderRegistry.from_hook_results([[object]])
    assert (
        ProviderRegistry.from_hook_results([[ManualProvider], [ManualProvider], None]).get("manual") is ManualProvider
    )


def test_every_hookspec_of_the_plugin_is_documented():
    specs = [name for name in dir(hookspecs) if name.startswith("pec_")]
    assert specs == ["pec_activation_providers"]
    for name in specs:
        assert ":return:" in (getattr(hookspecs, name).__doc__ or "")


# --- signatures -------------------------------------------------------------------------

BODY = b'{"event": "activation.updated"}'
NOW = 1_780_000_000


def test_a_signed_body_verifies_with_the_secret():
    header = sign("s3cret", BODY, timestamp=NOW)
    assert header.startswith(f"t={NOW},v1=")
    assert verify(header, BODY, ["s3cret"], clock=lambda: NOW + 10) == NOW


@pytest.mark.parametrize(
    ("header", "body", "secrets", "now", "reason"),
    [
        (None, BODY, ["s3cret"], NOW, "not signed"),
        ("v1=abc", BODY, ["s3cret"], NOW, "malformed"),
        ("t=1,v1=", BODY, ["s3cret"], NOW, "malformed"),
        ("SIGNED", BODY + b" ", ["s3cret"], NOW, "does not match"),  # the body was changed
        ("SIGNED", BODY, ["other"], NOW, "does not match"),
        ("SIGNED", BODY, [""], NOW, "does not match"),
        ("SIGNED", BODY, ["s3cret"], NOW + 301, "too old"),  # a replay five minutes later
        ("SIGNED", BODY, ["s3cret"], NOW - 301, "from the future"),
    ],
)
def test_a_callback_that_cannot_be_believed_is_refused(header, body, secrets, now, reason):
    if header == "SIGNED":
        header = sign("s3cret", BODY, timestamp=NOW)
    with pytest.raises(InvalidCallback, match=reason):
        verify(header, body, secrets, clock=lambda: now)


def test_during_a_secret_change_both_secrets_verify():
    old = sign("old-secret", BODY, timestamp=NOW)
    new = sign("new-secret", BODY, timestamp=NOW)
    for header in (old, new):
        assert verify(header, BODY, ["new-secret", "old-secret"], clock=lambda: NOW) == NOW


def test_an_empty_secret_signs_nothing():
    with pytest.raises(ValueError):
        sign("", BODY)
