"""A real S3-compatible server on loopback for the tests of the ``s3`` backends: moto's server in a
thread of the test process, spoken to by boto3 over HTTP on a socket, as MinIO or Amazon would be.

``s3_endpoint`` starts one server per test session; ``s3_settings`` gives each test a fresh bucket
and the settings naming it; ``use_s3`` switches the suite's application to the ``s3`` backends for
one test. Import the fixtures into a test module to use them there.
"""

from __future__ import annotations

import contextlib
import socket
import uuid

import pytest

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key-never-shown"
REGION = "eu-south-2"
_CACHES = ("ventanilla_files", "ventanilla_named_stores", "ventanilla_s3_bucket")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str):
    import boto3

    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY
    )


@pytest.fixture
def s3_settings(s3_endpoint) -> dict:
    """A new empty bucket and the configuration that uses it (with a key prefix, as an
    installation sharing a bucket would have)."""
    bucket = f"ventanilla-{uuid.uuid4().hex[:12]}"
    s3_client(s3_endpoint).create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return {
        "FILES_STORE": "s3",
        "OUTBOX_STORE": None,
        "S3_BUCKET": bucket,
        "S3_PREFIX": "site-a",
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_REGION": REGION,
        "S3_ACCESS_KEY_ID": ACCESS_KEY,
        "S3_SECRET_ACCESS_KEY": SECRET_KEY,
        "S3_ADDRESSING_STYLE": "path",
    }


def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    answer = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in answer.get("Contents", []))


@contextlib.contextmanager
def configured(app, settings: dict):
    """The application with ``settings`` for the duration (its stores built anew, before and after)."""
    saved = {key: app.config.get(key) for key in settings}
    app.config.update(settings)
    for cache in _CACHES:
        app.extensions.pop(cache, None)
    try:
        yield app
    finally:
        app.config.update(saved)
        for cache in _CACHES:
            app.extensions.pop(cache, None)


@pytest.fixture
def use_s3(app, s3_settings):
    """The suite's application keeps its files and outbox in a fresh bucket for this test."""
    with configured(app, s3_settings):
        yield s3_settings
