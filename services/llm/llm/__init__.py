"""LLM service: an OpenAI-compatible server (embedded llama.cpp on CPU; vLLM in production)."""
