"""The dialer's durable store: campaigns, contacts, attempts and the do-not-call list."""
