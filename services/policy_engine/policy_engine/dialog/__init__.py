"""One turn of a call through the script: its state, context, nodes, booking and rollback."""
