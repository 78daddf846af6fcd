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
	@$(BIN)/pybabel -q compile -d core/translations -D messages
	@for d in plugins/*/translations; do \
		if [ -d "$$d" ]; then $(BIN)/pybabel -q compile -d "$$d" -D messages || exit 1; fi; \
	done

migrate: install
	$(BIN)/flask db upgrade heads

# On a database with tenants of its own the demo is refused (it brings an operator account with a
# published password): DEMO_FORCE=1 loads it anyway.
demo: migrate
	$(BIN)/flask demo load $(if $(DEMO_FORCE),--force)

# The demo's accounts use the reserved .test domain, which production refuses by default: the
# demo is loaded and served with it allowed, also on a DATABASE_URL of your own.
demo run: export VENTANILLA_ALLOW_TEST_EMAIL ?= 1
# A tenant's SMTP server may be on this machine (a local test server) in the demo; in production
# servers on private addresses are refused (core/netcheck.py).
demo run: export VENTANILLA_ALLOW_PRIVATE_HOSTS ?= 1
# Links in e-mails are built from the public URL (the application refuses to start without it):
# here, the address `make run` serves.
migrate demo run: export VENTANILLA_PUBLIC_URL ?= http://$(or $(HOST),127.0.0.1):$(or $(PORT),5000)

run: demo
	$(BIN)/python -m core.serve

test: install
	$(BIN)/pytest -n $(or $(TEST_JOBS),auto) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) instance .pytest_cache

# After adding or changing translatable strings: extract them into core/translations/messages.pot
# (core) and plugins/<name>/translations/messages.pot (each plugin: its own catalogue), and merge
# those into each language's messages.po (created if missing). Then fill the new, empty entries,
# review those marked fuzzy (and drop the flag), and run `make translations`.
# tests/core/test_translations.py reads BABEL_KEYWORDS and fails while an entry is missing, empty or fuzzy.
BABEL_KEYWORDS := _ _l gettext lazy_gettext ngettext:1,2 lazy_ngettext:1,2 pgettext:1c,2 lazy_pgettext:1c,2
CATALOGUE_LANGUAGES := es it en

.PHONY: translations-update
translations-update: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg $(addprefix -k ,$(BABEL_KEYWORDS)) -c TRANSLATORS: \
		--project=Ventanilla --copyright-holder="the Ventanilla authors" -o core/translations/messages.pot .
	@for lang in $(CATALOGUE_LANGUAGES); do \
		$(BIN)/pybabel -q update --init-missing --previous --ignore-obsolete --ignore-pot-creation-date -l $$lang \
			-i core/translations/messages.pot -d core/translations -D messages || exit 1; \
	done
	$(BIN)/python -m core.i18n.catalogues fill-english core/translations/en/LC_MESSAGES/messages.po
	@for plugin in plugins/*/; do \
		[ -f "$$plugin/__init__.py" ] || continue; \
		mkdir -p "$$plugin/translations"; \
		(cd "$$plugin" && ../../$(BIN)/pybabel -q extract -F ../../babel-plugin.cfg $(addprefix -k ,$(BABEL_KEYWORDS)) \
			-c TRANSLATORS: --project=Ventanilla --copyright-holder="the Ventanilla authors" \
			-o translations/messages.pot .) || exit 1; \
		for lang in $(CATALOGUE_LANGUAGES); do \
			$(BIN)/pybabel -q update --init-missing --previous --ignore-obsolete --ignore-pot-creation-date -l $$lang \
				-i "$$plugin/translations/messages.pot" -d "$$plugin/translations" -D messages || exit 1; \
		done; \
		$(BIN)/python -m core.i18n.catalogues fill-english "$$plugin/translations/en/LC_MESSAGES/messages.po"; \
	done
