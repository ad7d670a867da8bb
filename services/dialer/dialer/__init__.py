"""The outbound campaign dialer.

Works through a campaign's contact list: places a call only when a concurrency slot is free and
the contact's calling window (in the contact's own local time) is open, never to a number on the
do-not-call list, never twice at once, and within the per-contact frequency caps. Campaigns,
contacts, attempts and the do-not-call list live in an SQL database (an SQLite file by default,
PostgreSQL in compose); Redis holds only what is live (slots, leases, rate buckets). Calls are
placed with ``originate`` over FreeSWITCH's Event Socket and finished from its
``CHANNEL_HANGUP_COMPLETE`` events and the dialog's outcome on ``calls:completed``.

The core (:mod:`dialer.core`) is plain functions fed a clock; the edges are the database
(:mod:`dialer.store`), Redis, the Event Socket and the HTTP API.
"""
