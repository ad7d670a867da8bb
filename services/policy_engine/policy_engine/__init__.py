"""Dialog policy engine: the clinic sales script as a state machine with Redis sessions."""
