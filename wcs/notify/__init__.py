"""Customer notifications: sent from durable rows, at most once per channel and event.

Layers, each in its own module:

- ``queue``: the hook ``record_events`` calls in the state change's own transaction;
  it writes a ``notify_requests`` row for each event someone must hear about.
- ``policy``: pure decisions (who hears about what, on which channel, in which
  language; idempotency keys and Message-IDs; retry backoff).
- ``templates``: Jinja2 templates shipped in the package, Simplified Chinese and English.
- ``channels``: e-mail over SMTP and an SMS/webhook adapter over HTTP; foreign errors
  are translated into the three outcomes the worker acts on.
- ``store``: the rows: expand requests and notices into notifications, claim, record
  outcomes, recover after a crash, dead-letter list and retries.
- ``worker``: ``Notifier``, the named background task (API lifespan or ``wcs notify``).
"""
