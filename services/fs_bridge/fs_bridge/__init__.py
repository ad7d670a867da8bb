"""FreeSWITCH bridge: mod_audio_fork endpoint, ESL control, one CallSession per call."""
