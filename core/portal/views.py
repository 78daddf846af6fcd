"""The client portal: a phone-first app where a client sees and answers what the tenant asks.

Installable as a web app (manifest and service worker under the portal's own scope), so that
it can receive push notifications.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, g, jsonify, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from core.auth.forms import LanguageForm
from core.auth.views import own_account_page
from core.errors import DomainError
from core.permissions import portal, public
from core.plugins import host
from core.push import services as push
from tenants.licensing import enabled_for_current_tenant

bp = Blueprint("portal", __name__)

STATIC = Path(__file__).resolve().parent.parent / "static"


def portal_menu() -> list:
    items = host().call_for_tenant(
        "portal_navigation",
        enabled_for_current_tenant(),
        tenant=g.tenant,
        user=current_user,
        client=current_user.client,
    )
    return sorted(items, key=lambda item: (item.order, str(item.title)))


@bp.app_context_processor
def _portal_menu():
    def menu_items():
        if g.get("tenant") is None or not getattr(current_user, "is_portal", False):
            return []
        return [(item, url_for(item.endpoint, **item.url_values)) for item in portal_menu()]

    return {"portal_menu": menu_items}


@bp.route("/")
@portal
def home():
    return render_template("portal/home.html", client=current_user.client)


@bp.route("/account", methods=["GET", "POST"])
@portal
def account():
    return own_account_page(LanguageForm, "profile-locale", "portal/account.html")


@bp.route("/manifest.webmanifest")
@public
def manifest():
    start = url_for("portal.home")
    return (
        jsonify(
            name=g.tenant.name,
            short_name=g.tenant.name[:12],
            start_url=start,
            scope=start,
            display="standalone",
            background_color="#ffffff",
            theme_color="#1d4e89",
            lang=g.tenant.language,
            icons=[{"src": url_for("static", filename="favicon.svg"), "sizes": "any", "type": "image/svg+xml"}],
        ),
        200,
        {"Content-Type": "application/manifest+json"},
    )


@bp.route("/sw.js")
@public
def service_worker():
    # Served from inside the portal's path so that its scope is the portal.
    response = Response((STATIC / "portal-sw.js").read_text(), mimetype="application/javascript")
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.route("/push/key")
@portal
def push_key():
    # The service worker has no page to read the CSRF token from when it renews a subscription.
    return jsonify(publicKey=push.public_key(), csrfToken=generate_csrf())


@bp.route("/push/subscriptions", methods=["POST"])
@portal
def push_subscribe():
    subscription = request.get_json(silent=True)
    if not isinstance(subscription, dict):
        subscription = {}
    try:
        push.subscribe(
            current_user,
            subscription,
            request.user_agent.string or "",
            replaces=str(subscription.get("replaces") or ""),
        )
    except DomainError as error:
        return jsonify(error=str(error.message)), 400
    return jsonify(ok=True), 201


@bp.route("/push/subscriptions/delete", methods=["POST"])
@portal
def push_unsubscribe():
    push.unsubscribe(current_user, str((request.get_json(silent=True) or {}).get("endpoint") or ""))
    return jsonify(ok=True)
