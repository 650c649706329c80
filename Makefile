# Two commands set everything up on a fresh machine with Python 3.11+ and make:
#   make demo   creates .venv, installs perpguard, starts the console on the paper exchange with a demo bot
#   make test   creates .venv, installs perpguard with its dev extras, runs the suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-repeat bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/perpguard --demo

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# The suite N times in a row (default 10), stopping at the first red run: a test that fails one
# run in three shows up here before it costs a submission.
N ?= 10
test-repeat: $(STAMP)
	@for i in $$(seq $(N)); do echo "== make test: run $$i of $(N)"; $(MAKE) --no-print-directory test || exit 1; done

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache bench/results.json
