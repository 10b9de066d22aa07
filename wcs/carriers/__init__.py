"""Carriers: the HTTP adapter that books shipments, webhook signing, and a fake carrier.

Sub-modules are imported directly (``wcs.carriers.client``, ``wcs.carriers.signing``)
so that verifying a webhook does not pull in the HTTP client or the fake server.
The pure choice of carrier and service lives in ``wcs.domain.carriers``.
"""
