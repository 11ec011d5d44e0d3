# The two commands: `make run` starts the hotline, `make test` runs the whole suite.
# Both set up what they need first: Debian packages (as root), the virtual environment, prompts.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
IVR    := $(BIN)/ivr

.PHONY: run test lint system-deps install prompts db pbx clean bench

run: install prompts db
	@echo
	@echo "ivr124 is starting on http://127.0.0.1:8124 (FastAGI on 127.0.0.1:4573)."
	@echo "  Twilio: point the number's Voice webhook (POST) at <your public URL>/twilio/voice,"
	@echo "          its status callback at <your public URL>/twilio/status, and set"
	@echo "          IVR_TWILIO_AUTH_TOKEN (and IVR_PUBLIC_URL behind a proxy)."
	@echo "  Terminal phone, in another shell:  $(IVR) call"
	@echo
	$(IVR) serve

test: install prompts
	$(BIN)/ruff check ivr tests benchmarks
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check ivr tests benchmarks
	$(BIN)/ruff format --check ivr tests benchmarks

# Debian packages the prompts and the tests need; installed only when missing (needs root).
system-deps:
	@missing=""; \
	command -v espeak-ng >/dev/null || missing="$$missing espeak-ng"; \
	command -v sox >/dev/null || missing="$$missing sox"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

install: system-deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

prompts: install
	$(IVR) prompts build

db: install
	$(IVR) db upgrade

clean:
	rm -rf $(VENV) prompts/generated
