# Clinic voice agent: common tasks. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# Whole calls with a service killed mid-call: minutes of restarts, so `make test` leaves them to
# `make test-resilience` (CI runs both).
RESILIENCE_TESTS := tests/resilience
# pytest on $(1) and PYTEST_ARGS; collecting no tests (exit 5) fails loudly, so an empty run can
# never pass.
pytest_or_fail = set +e; $(PY) -m pytest $(1) $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests; refusing to call that a pass" >&2; fi; \
	exit $$rc
COMPOSE ?= docker compose
# Compose profiles come from COMPOSE_PROFILES in .env; `make up PROFILE=gpu` adds one.
PROFILE ?=

.PHONY: help setup lock test test-resilience test-unit lint fmt typecheck check check-deploy bench bench-long-call bench-realtimestt demo demo-outbound serve stop up down logs models \
        run-asr run-tts run-policy run-llm run-notifier run-bridge clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target>\n\n"} \
	     /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## Create .venv from the lock, build llama.cpp's text runtime, assemble models, make sure Redis answers
	@bash scripts/setup.sh

lock: setup ## Re-resolve uv.lock and rewrite requirements/lock/ after a dependency changed (LOCK_ARGS=--upgrade)
	@bash scripts/lock.sh $(LOCK_ARGS)

test: setup ## Run the test suite but the kill tests (CI runs test-resilience too)
	@$(call pytest_or_fail,--ignore=$(RESILIENCE_TESTS))

test-resilience: setup ## Kill each service (ASR, TTS, notifier, Redis, Event Socket) mid-call; the call goes on
	@$(call pytest_or_fail,$(RESILIENCE_TESTS))

test-unit: setup ## Run only the fast unit tests
	@$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: setup ## ruff lint and format check
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/ruff format --check .

fmt: setup ## Apply ruff formatting and safe fixes
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

typecheck: setup ## mypy (strict) on the shared package and the services
	@$(VENV)/bin/mypy

check: lint typecheck test ## Everything CI checks

bench: setup ## Measure speed and memory; prints figures and ratios to targets
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit $$?; done

bench-long-call: setup ## Bridge and ASR memory after a 1-minute and a 30-minute call (takes ~35 min)
	@$(PY) benchmarks/long_call.py

bench-realtimestt: setup ## The ASR gateway side by side with RealtimeSTT (own venv, torch CPU)
	@bash scripts/realtimestt_venv.sh
	@$(PY) benchmarks/bench_asr.py realtimestt

demo: setup ## The main job: start the stack, place a scripted booking call, show it (exit 1 if not booked)
	@$(PY) scripts/stack.py demo

demo-outbound: setup ## A small campaign on callsim's callees: one books, one busy then answers, one never answers, one on do-not-call
	@$(PY) scripts/stack.py demo-outbound

serve: setup ## Start the whole stack on this machine (callsim as FreeSWITCH) and leave it running (CALLEES=DIR: campaign callees)
	@CALLEES="$(CALLEES)" $(PY) scripts/stack.py serve

stop: ## Stop what `make serve` started
	@$(PY) scripts/stack.py stop

check-deploy: setup ## Static checks of compose.yaml, freeswitch/ and the Dockerfiles (no Docker needed)
	@$(PY) -m deploycheck

models: setup ## List the model registry and cache status
	@$(VENV)/bin/agent-models list

up: ## docker compose up: builds and starts the deployment described by .env (see docs/deployment.md)
	@command -v docker >/dev/null || { echo "error: docker is not installed (docs/deployment.md lists what the host needs)" >&2; exit 1; }
	@test -f .env || { echo "error: no .env: cp .env.example .env, then set ESL_PASSWORD, FORK_PASSWORD and COMPOSE_PROFILES" >&2; exit 1; }
	$(COMPOSE) $(if $(PROFILE),--profile $(PROFILE)) up -d --build

down: ## docker compose down
	$(COMPOSE) down

logs: ## Follow the compose logs
	$(COMPOSE) logs -f

run-asr: setup ## Run the ASR gateway alone (port 8081)
	$(PY) -m asr_gateway

run-tts: setup ## Run the TTS gateway alone (port 8082)
	$(PY) -m tts_gateway

run-policy: setup ## Run the policy engine alone (port 8083)
	$(PY) -m policy_engine

run-llm: setup ## Run the LLM service alone (port 8000)
	$(PY) -m llm

run-notifier: setup ## Run the notifier alone (port 8085)
	$(PY) -m notifier

run-bridge: setup ## Run the FreeSWITCH bridge alone (port 8080)
	$(PY) -m fs_bridge

clean: ## Remove the venv, caches and the project's own Redis (the model and wheel caches stay)
	-@[ -f .run/redis/redis.pid ] && kill $$(cat .run/redis/redis.pid) 2>/dev/null || true
	rm -rf $(VENV) .run .mypy_cache .pytest_cache .ruff_cache
