"""Fixtures of the file tests: a tenant to act for, and an empty file store after every test."""

from __future__ import annotations

import contextlib
import shutil

import pytest


@pytest.fixture(autouse=True)
def _empty_file_store(app):
    yield
    shutil.rmtree(app.config["FILES_DIR"], ignore_errors=True)


@pytest.fixture
def acme(factory):
    return factory.tenant("acme", language="en")


@pytest.fixture
def acting(app):
    """``with acting(tenant):`` — an application context acting for ``tenant``, messages in English."""
    from flask_babel import force_locale

    from tenants.context import tenant_context

    @contextlib.contextmanager
    def enter(tenant):
        with app.app_context(), tenant_context(tenant.id), force_locale("en"):
            yield

    return enter
