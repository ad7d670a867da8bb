"""Redis implementations of the engine's stores: sessions and the appointment calendar."""
