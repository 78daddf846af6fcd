# Ventanilla: `make run` serves the platform, `make test` runs the whole suite.
# Both work on a fresh clone of a machine with python3 (>= 3.11) and make.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export FLASK_APP := core.app:create_app

.PHONY: run test install migrate demo translations lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) translations

translations: $(STAMP)
	@$(BIN)/pybabel compile --use-fuzzy -q -d core/translations -D messages
	@for d in plugins/*/translations tests/sample_plugin/translations; do \
		[ -d "$$d" ] && $(BIN)/pybabel compile -q -d "$$d" -D messages || true; \
	done

migrate: install
	$(BIN)/flask db upgrade heads

demo: migrate
	$(BIN)/flask demo load

run: demo
	$(BIN)/python -m core.serve

test: install
	$(BIN)/pytest -n $(or $(TEST_JOBS),auto) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) instance .pytest_cache
