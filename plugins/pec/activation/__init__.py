"""Box activation behind a provider contract (issue 12, point 3).

``contract`` defines the requests, results, errors and the ``ActivationProvider`` base class (with
the manual provider), ``signing`` the HMAC signatures of callbacks, ``http_api`` the provider of a
gestore reached over HTTP. ``plugins.pec.test_provider`` is a loopback gestore for tests and demos.
"""
