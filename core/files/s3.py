"""The S3 backends (``FILES_STORE=s3``, ``OUTBOX_STORE=s3``): any S3-compatible object store
(Amazon S3, MinIO, Ceph RGW, Garage...) through boto3, so that the web and workers on several
machines see the same files and the same outbox without sharing a disk.

Layout under the bucket and the optional ``S3_PREFIX``:

- ``files/<tenant_id>/<key[:2]>/<key>`` and its variants ``<key>.<variant>`` (the tenant is in
  every key: a bucket policy or a lifecycle rule can address one tenant);
- ``<kind>/<rank>~<name>`` for named objects (``outbox/...``). S3 lists keys in ascending order
  only; ``rank`` is the name with every character mirrored in the alphabet of names, so ascending
  keys are descending names and a page of the newest objects, after any cursor, is one LIST call.

Credentials come from ``S3_ACCESS_KEY_ID``/``S3_SECRET_ACCESS_KEY`` or, when unset, from boto3's
own chain (``AWS_*`` variables, an instance or pod role). They are never logged or shown: errors
name the bucket, the endpoint and what the server answered.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask

from core.files.store import (
    FileStore,
    NamedStore,
    ObjectInfo,
    StorageUnavailable,
    _check,
    check_name,
    content_key,
    register_backend,
    register_named_backend,
)

# Objects up to this size are read into memory; larger ones are spooled to a temporary file, so a
# 30 MB download does not sit in a worker's memory.
SPOOL_IN_MEMORY = 1024 * 1024
CHUNK = 256 * 1024
# The headers of a page of outbox files are read with this many requests at once.
PARALLEL_READS = 8

_ALPHABET = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"  # ASCII order
_MIRROR = str.maketrans(_ALPHABET, _ALPHABET[::-1])
# Sorts after every character of the alphabet: a name sorts after its own extensions ("a" > "a.b"
# reversed means "a" lists after "a.b"), and before it the rank ends.
_END = "~"

_MISSING = {"404", "NoSuchKey", "NotFound"}
_NO_BUCKET = "the bucket does not exist: create it, or check VENTANILLA_S3_BUCKET and VENTANILLA_S3_ENDPOINT_URL"
_HINTS = {
    "NoSuchBucket": _NO_BUCKET,
    "404": _NO_BUCKET,
    "InvalidAccessKeyId": "the access key is unknown: check VENTANILLA_S3_ACCESS_KEY_ID",
    "SignatureDoesNotMatch": "the secret key is wrong: check VENTANILLA_S3_SECRET_ACCESS_KEY",
    "AccessDenied": "access denied: check the credentials and the bucket's policy",
    "403": "access denied: check VENTANILLA_S3_ACCESS_KEY_ID and _SECRET_ACCESS_KEY, and the bucket's policy",
    "301": "the bucket is in another region: check VENTANILLA_S3_REGION",
    "PermanentRedirect": "the bucket is in another region: check VENTANILLA_S3_REGION",
}


def rank(name: str) -> str:
    """The key part that lists ``name`` in descending order: mirrored characters, then ``~``."""
    return name.translate(_MIRROR) + _END


class S3Bucket:
    """A boto3 client bound to one bucket and prefix, turning errors into ``StorageUnavailable``
    (with what to check) or ``FileNotFoundError``."""

    def __init__(self, client, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    def __repr__(self) -> str:  # never the credentials
        return f"<S3Bucket {self.describe()}>"

    def describe(self, folder: str = "") -> str:
        where = f"{self.prefix}{folder}"
        return f"S3 bucket {self.bucket!r}{f' under {where!r}' if where else ''} at {self.client.meta.endpoint_url}"

    def unavailable(self, error: Exception) -> StorageUnavailable:
        where = self.describe()
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            hint = _HINTS.get(code) or _HINTS.get(str(status)) or "the server refused the request"
            return StorageUnavailable(f"{where}: {hint} (the server answered {status} {code})")
        return StorageUnavailable(f"{where}: {type(error).__name__}: {error}")

    def call(self, method: str, key: str | None = None, **arguments):
        """``client.<method>(Bucket=..., Key=key, ...)``; an absent key raises ``FileNotFoundError``."""
        if key is not None:
            arguments["Key"] = key
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **arguments)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if key is not None and code in _MISSING:
                raise FileNotFoundError(key) from None
            raise self.unavailable(error) from None
        except BotoCoreError as error:  # no credentials, endpoint unreachable, ...
            raise self.unavailable(error) from None

    def check(self) -> None:
        """Raise ``StorageUnavailable`` unless the bucket exists and the credentials may use it."""
        self.call("head_bucket")

    def keys(self, prefix: str) -> list[str]:
        found, token = [], None
        while True:
            page = self.call("list_objects_v2", Prefix=prefix, **({"ContinuationToken": token} if token else {}))
            found += [item["Key"] for item in page.get("Contents", [])]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found

    def delete_keys(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
            chunk = keys[start : start + 1000]
            answer = self.call("delete_objects", Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
            if errors := answer.get("Errors"):  # a 200 answer may still refuse some keys
                first = errors[0]
                raise StorageUnavailable(
                    f"{self.describe()}: {len(errors)} object(s) not deleted, "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}".rstrip()
                )


class S3FileStore(FileStore):
    """Uploaded files, content-addressed per tenant, in a bucket."""

    def __init__(self, bucket: S3Bucket) -> None:
        self.bucket = bucket

    def __repr__(self) -> str:
        return f"<S3FileStore {self.describe()}>"

    def describe(self) -> str:
        return self.bucket.describe("files/")

    def object_key(self, tenant_id: int, key: str, variant: str | None = None) -> str:
        _check(tenant_id, key, variant)
        name = key if variant is None else f"{key}.{variant}"
        return f"{self.bucket.prefix}files/{tenant_id}/{key[:2]}/{name}"

    def save(self, tenant_id: int, data: bytes) -> str:
        key = content_key(data)
        if not self.exists(tenant_id, key):  # same key, same bytes: a second upload costs a HEAD
            self.bucket.call("put_object", self.object_key(tenant_id, key), Body=data)
        return key

    def save_variant(self, tenant_id: int, key: str, variant: str, data: bytes) -> None:
        self.bucket.call("put_object", self.object_key(tenant_id, key, variant), Body=data)

    def open(self, tenant_id: int, key: str, variant: str | None = None) -> BinaryIO:
        answer = self.bucket.call("get_object", self.object_key(tenant_id, key, variant))
        # Handed to the caller, who closes it (a download closes it when the response ends).
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, prefix="ventanilla-s3-")  # noqa: SIM115
        try:
            with contextlib.closing(answer["Body"]) as body:
                for chunk in body.iter_chunks(CHUNK):
                    spool.write(chunk)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool

    def exists(self, tenant_id: int, key: str, variant: str | None = None) -> bool:
        try:
            self.bucket.call("head_object", self.object_key(tenant_id, key, variant))
        except FileNotFoundError:
            return False
        return True

    def delete(self, tenant_id: int, key: str) -> None:
        # The object's key is a prefix of its variants' keys only (keys have a fixed length).
        self.bucket.delete_keys(self.bucket.keys(self.object_key(tenant_id, key)))


class S3NamedStore(NamedStore):
    """Named objects of one kind under ``<prefix><kind>/``, keyed by ``rank(name)~name``."""

    def __init__(self, bucket: S3Bucket, kind: str) -> None:
        self.bucket = bucket
        self.folder = f"{bucket.prefix}{kind}/"

    def __repr__(self) -> str:
        return f"<S3NamedStore {self.describe()}>"

    def describe(self) -> str:
        return self.bucket.describe(self.folder[len(self.bucket.prefix) :])

    def object_key(self, name: str) -> str:
        check_name(name)
        return f"{self.folder}{rank(name)}{name}"

    def _info(self, key: str, size: int, modified) -> ObjectInfo:
        return ObjectInfo(key[len(self.folder) :].split(_END, 1)[1], size, modified)

    def put(self, name: str, data: bytes) -> None:
        self.bucket.call("put_object", self.object_key(name), Body=data)

    def get(self, name: str) -> tuple[ObjectInfo, bytes]:
        key = self.object_key(name)
        answer = self.bucket.call("get_object", key)
        with contextlib.closing(answer["Body"]) as body:
            data = body.read()
        return self._info(key, answer["ContentLength"], answer["LastModified"]), data

    def head(self, name: str, size: int) -> bytes:
        answer = self.bucket.call("get_object", self.object_key(name), Range=f"bytes=0-{size - 1}")
        with contextlib.closing(answer["Body"]) as body:
            return body.read()

    def heads(self, names: Iterable[str], size: int) -> dict[str, bytes]:
        names = list(names)

        def one(name: str) -> bytes | None:
            try:
                return self.head(name, size)
            except FileNotFoundError:
                return None

        with ThreadPoolExecutor(max_workers=PARALLEL_READS) as pool:
            return {n: data for n, data in zip(names, pool.map(one, names), strict=True) if data is not None}

    def list(self, after: str | None = None, limit: int = 50) -> tuple[list[ObjectInfo], str | None]:
        arguments = {"Prefix": self.folder, "MaxKeys": limit + 1}
        if after:
            arguments["StartAfter"] = self.object_key(after)
        page = self.bucket.call("list_objects_v2", **arguments)
        items = [
            self._info(item["Key"], item["Size"], item["LastModified"])
            for item in page.get("Contents", [])
            if _END in item["Key"][len(self.folder) :]
        ]
        return items[:limit], (items[limit - 1].name if len(items) > limit else None)

    def delete(self, name: str) -> None:
        self.bucket.call("delete_object", self.object_key(name))


def bucket_from_config(app: Flask) -> S3Bucket:
    """The bucket the configuration names, checked once: a missing bucket or refused credentials
    stop here with a message saying what to fix, not at the first upload."""
    cached = app.extensions.get("ventanilla_s3_bucket")
    if cached is not None:
        return cached
    config = app.config
    if not config.get("S3_BUCKET"):
        raise StorageUnavailable("FILES_STORE or OUTBOX_STORE is s3 but VENTANILLA_S3_BUCKET is not set")
    style = config.get("S3_ADDRESSING_STYLE") or "auto"
    if style not in ("auto", "path", "virtual"):
        raise StorageUnavailable(f"VENTANILLA_S3_ADDRESSING_STYLE must be auto, path or virtual, not {style!r}")
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=config.get("S3_ENDPOINT_URL") or None,
        region_name=config.get("S3_REGION") or None,
        aws_access_key_id=config.get("S3_ACCESS_KEY_ID") or None,
        aws_secret_access_key=config.get("S3_SECRET_ACCESS_KEY") or None,
        config=Config(
            s3={"addressing_style": style},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=10,
            read_timeout=60,
            # Checksums only where S3 requires them: several S3-compatible servers refuse the
            # trailing checksums that newer botocore sends by default.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    bucket = S3Bucket(client, config["S3_BUCKET"], config.get("S3_PREFIX") or "")
    bucket.check()
    app.extensions["ventanilla_s3_bucket"] = bucket
    return bucket


register_backend("s3", lambda app: S3FileStore(bucket_from_config(app)))
register_named_backend("s3", lambda app, kind: S3NamedStore(bucket_from_config(app), kind))
