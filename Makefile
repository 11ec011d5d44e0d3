# The two commands: `make run` starts the hotline, `make test` runs the whole suite.
# Both set up what they need first: Debian packages (as root), the virtual environment, prompts.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
IVR    := $(BIN)/ivr
PBX_SOUNDS := /var/cache/ivr124/asterisk-root/opt/ivr/data/sounds

.PHONY: run test lint system-deps test-deps install prompts db pbx pbx-root clean

# $(call apt_missing,command:package ...): apt-get install the packages whose command is missing.
define apt_missing
missing=""; for pair in $(1); do \
  command -v "$${pair%%:*}" >/dev/null || missing="$$missing $${pair#*:}"; done; \
if [ -n "$$missing" ]; then \
  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (install as root)"; exit 1; fi; \
  echo "installing:$$missing"; apt-get update -qq && \
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
endef

# The banner comes from `ivr` itself, so its addresses are the ones `ivr serve` uses (IVR_*).
run: install prompts db
	@echo
	@$(IVR) settings --banner
	@echo
	$(IVR) serve

# PostgreSQL is started (as root) unless IVR_TEST_POSTGRES_URL names one already.
test: install test-deps prompts pbx-root
	$(BIN)/ruff check ivr tests benchmarks
	IVR_TEST_POSTGRES_URL="$${IVR_TEST_POSTGRES_URL:-$$( [ "$$(id -u)" = 0 ] && bash .ci/postgres.sh)}" \
	  $(BIN)/pytest

lint: install
	$(BIN)/ruff check ivr tests benchmarks
	$(BIN)/ruff format --check ivr tests benchmarks

# Debian packages, installed only when missing: what the prompts need ...
system-deps:
	@$(call apt_missing,espeak-ng:espeak-ng sox:sox ffmpeg:ffmpeg dot:graphviz)
	@# WeasyPrint (the nightly report's PDF) loads Pango; it has no command to look for.
	@ldconfig -p | grep -q libpangoft2-1.0 || { \
	  if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages: libpango-1.0-0 libpangoft2-1.0-0 (install as root)"; exit 1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 >/dev/null; }
	@[ "$$(id -u)" != 0 ] || bash .ci/mbrola.sh || true  # the MBROLA Persian voice, if available

# ... and what the tests need besides: sipp, mmdebstrap for the Asterisk root, PostgreSQL.
test-deps:
	@$(call apt_missing,sipp:sip-tester mmdebstrap:mmdebstrap pg_ctlcluster:postgresql chromium:chromium pdffonts:poppler-utils)

install: system-deps $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

prompts: install
	$(IVR) prompts build

db: install
	$(IVR) db upgrade

# The test PBX: Asterisk 22 from Debian testing in a root of its own (it is not in Debian 12).
pbx-root: install
	@if [ "$$(id -u)" = 0 ]; then $(BIN)/python -m ivr.devtools.testpbx build; \
	else echo "not root: no Asterisk root, the Asterisk tests will be skipped"; fi

# Start the test PBX with the project's dialplans and prompts, for a SIP softphone (baresip).
pbx: prompts pbx-root
	$(IVR) prompts install --asterisk $(PBX_SOUNDS)
	@echo "Start the controller in another shell: $(IVR) serve"
	$(BIN)/python -m ivr.devtools.testpbx run

# Rendered prompts (storage/prompts, and prompts/generated where the tests render them); the
# database and recordings in storage/ are kept.
clean:
	rm -rf $(VENV) storage/prompts prompts/generated build dist
