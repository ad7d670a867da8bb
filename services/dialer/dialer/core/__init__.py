"""The dialer's decisions as plain functions and small state machines fed a clock (no I/O)."""
