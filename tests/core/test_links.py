"""Templates' ``url_for`` (``core.links``) writes the links Flask writes, for every route."""

from __future__ import annotations

import pytest
from flask import g
from flask import url_for as flask_url_for
from werkzeug.routing import BuildError, IntegerConverter

from core import links


def _arguments(rule, offset: int) -> dict:
    """Values for every argument of ``rule``: ids for ints, plain words for the rest."""
    values = {}
    for index, name in enumerate(sorted(rule.arguments - {"tenant"})):
        is_int = isinstance(rule._converters[name], IntegerConverter)
        values[name] = 7 + offset * 1000 + index if is_int else f"w{offset}-{index}"
    return values


def test_every_route_gets_the_link_flask_builds(app, factory):
    tenant = factory.tenant("acme")
    with app.test_request_context("/acme/"):
        from core.extensions import db
        from tenants.models import Tenant

        g.tenant = db.session.get(Tenant, tenant.id)
        rules = [rule for rule in app.url_map.iter_rules() if not rule.endpoint.endswith("static")]
        assert len(rules) > 100
        for rule in rules:
            for offset in (0, 1, 2):
                values = _arguments(rule, offset)
                # A query argument too: a list's filters, a tab.
                for extra in ({}, {"tab": "certificates"}, {"after": 12345, "q": "a-b_c"}):
                    given = {**values, **extra}
                    try:
                        expected = flask_url_for(rule.endpoint, **given)
                    except BuildError:
                        with pytest.raises(BuildError):
                            links.url_for(rule.endpoint, **given)
                        continue
                    assert links.url_for(rule.endpoint, **given) == expected, (rule.rule, given)
        patterns = app.extensions[links._KEPT]["patterns"].values()
        assert sum(pattern is not None for pattern in patterns) > 100, "most links take the short way"


def test_values_that_are_not_written_as_they_are_take_flasks_way(app, factory):
    tenant = factory.tenant("acme")
    with app.test_request_context("/acme/"):
        from core.extensions import db
        from tenants.models import Tenant

        g.tenant = db.session.get(Tenant, tenant.id)
        assert links.url_for("clients.index", q="a") == flask_url_for("clients.index", q="a")
        for q in ("García & hijos", "a b", "50%", "x/y", "", "?=#"):
            assert links.url_for("clients.index", q=q) == flask_url_for("clients.index", q=q)
        assert links.url_for("clients.show", client_id=5, _anchor="notes") == flask_url_for(
            "clients.show", client_id=5, _anchor="notes"
        )
        assert links.url_for("clients.show", client_id=5, _external=True).startswith("http")
        assert links.url_for("clients.show", client_id=-1) == flask_url_for("clients.show", client_id=-1)
        assert links.url_for("clients.show", client_id=True) == flask_url_for("clients.show", client_id=True)
        # Digits as text where the rule wants an id: Flask takes them, and so does this.
        for value in ("12", "13"):
            assert links.url_for("clients.show", client_id=value) == flask_url_for("clients.show", client_id=value)
        for build in (flask_url_for, links.url_for):
            with pytest.raises(ValueError):
                build("clients.show", client_id="abc")


def test_each_tenant_gets_its_own_links(app, factory):
    """Another tenant's request (a job rendering mail for several inside one application context)
    gets its own slug."""
    acme = factory.tenant("acme")
    beta = factory.tenant("beta")
    from core.extensions import db
    from tenants.models import Tenant

    with app.app_context():
        for tenant in (acme, beta):
            with app.test_request_context(f"/{tenant.slug}/"):
                g.tenant = db.session.get(Tenant, tenant.id)
                assert links.url_for("clients.show", client_id=3) == f"/{tenant.slug}/clients/3"
                assert links.url_for("clients.show", client_id=4) == f"/{tenant.slug}/clients/4"


def test_templates_use_it(app):
    assert app.jinja_env.globals["url_for"] is links.url_for


def test_arguments_in_any_order_and_many_of_them(app, factory):
    tenant = factory.tenant("acme")
    with app.test_request_context("/acme/"):
        from core.extensions import db
        from tenants.models import Tenant

        g.tenant = db.session.get(Tenant, tenant.id)
        rules = [rule for rule in app.url_map.iter_rules() if len(rule.arguments - {"tenant"}) >= 2]
        assert rules, "some route takes two ids"
        for rule in rules:
            names = sorted(rule.arguments - {"tenant"}, reverse=True)
            for offset in (0, 1):
                given = {name: _arguments(rule, offset)[name] for name in names}
                given.update({f"k{n}": f"v{n}" for n in range(12)})
                assert links.url_for(rule.endpoint, **given) == flask_url_for(rule.endpoint, **given)


def test_links_that_another_url_default_may_change_are_kept_per_request():
    from flask import Flask

    plain = Flask("plain")
    assert links._shared_patterns(plain) == {}
    other = Flask("other")
    other.url_defaults(lambda endpoint, values: values.setdefault("lang", "es"))
    assert links._shared_patterns(other) is None
