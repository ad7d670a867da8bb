"""callsim: FreeSWITCH as the bridge sees it on the wire, and scripted callers."""
