#!/bin/sh
# vLLM OpenAI-compatible server for the GPU deployment (compose profile "gpu").
# Every setting has an environment override; services/llm/README.md explains what each costs.
# Prompts carry caller data: do not add --enable-log-requests.
set -eu
exec python3 -m vllm.entrypoints.openai.api_server \
    --host 0.0.0.0 \
    --port "${VLLM_PORT:-8000}" \
    --model "${VLLM_MODEL:-Qwen/Qwen2.5-14B-Instruct-AWQ}" \
    --served-model-name "${VLLM_SERVED_MODEL_NAME:-clinic-agent}" \
    --quantization "${VLLM_QUANTIZATION:-awq_marlin}" \
    --dtype float16 \
    --max-model-len "${VLLM_MAX_MODEL_LEN:-8192}" \
    --gpu-memory-utilization "${VLLM_GPU_MEMORY_UTILIZATION:-0.55}" \
    --max-num-seqs "${VLLM_MAX_NUM_SEQS:-32}" \
    --max-num-batched-tokens "${VLLM_MAX_NUM_BATCHED_TOKENS:-2048}" \
    --kv-cache-dtype "${VLLM_KV_CACHE_DTYPE:-auto}" \
    --enable-prefix-caching \
    --enable-chunked-prefill \
    ${VLLM_EXTRA_ARGS:-}
