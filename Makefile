# Two commands for a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
FLASK := $(BIN)/flask --app checkout

.PHONY: run test lint schema bench bench-console messages translations clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.run

## Serve the site on http://127.0.0.1:$(PORT) with the embedded sandbox, a worker and a demo merchant.
## The access log goes to stdout from a thread of its own (checkout/accesslog.py): a request
## thread only queues its line, in order; gunicorn's own logger wrote it in the request.
run: $(VENV)/.run translations
	$(FLASK) db upgrade
	CHECKOUT_PUBLIC_URL=http://127.0.0.1:$(PORT) $(FLASK) demo --flask-command '$(FLASK)'
	CHECKOUT_PUBLIC_URL=http://127.0.0.1:$(PORT) $(FLASK) worker & worker=$$!; \
	trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
	CHECKOUT_PUBLIC_URL=http://127.0.0.1:$(PORT) $(BIN)/gunicorn --bind 127.0.0.1:$(PORT) \
		--worker-class gthread --threads 16 --access-logfile - \
		--logger-class checkout.accesslog.QueuedAccessLog wsgi:app

## Lint, type-check and run the whole suite (browser tests need /usr/bin/chromium), one
## pytest-xdist worker per core (PYTEST_WORKERS=0: in one process). PYTEST_ARGS narrows it,
## e.g. PYTEST_ARGS='-m "not browser"'. A test file's groups stay on one worker (README).
PYTEST_WORKERS ?= auto
test: $(VENV)/.test lint translations
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check checkout tests $(wildcard bench/*.py)
	$(BIN)/mypy

## Developers: rebuild the initial migrations from the models (nothing is released yet): the
## site's branch, then (on a database holding it) the sandbox's.
schema: $(VENV)/.run
	rm -f checkout/migrations/versions/*.py checkout/sandbox/migrations/versions/*.py
	rm -rf /tmp/checkout-schema && mkdir -p /tmp/checkout-schema
	export CHECKOUT_DATABASE_URL=sqlite:////tmp/checkout-schema/s.db CHECKOUT_PROCESSOR_URL=; \
	$(FLASK) db revision -m "initial schema" --branch site && \
	$(FLASK) db upgrade && \
	$(FLASK) db revision -m "sandbox schema" --branch sandbox

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache

## Every route of a sale under gunicorn (as `make run`) against its floor (a bare Flask app;
## + one INSERT; + one processor call and an INSERT), loaded by wrk (Debian's package,
## installed here when missing); the poll again with limits in Redis when redis-server is
## installed; the page's weight; the goals. ~3.5 min (twice that with PostgreSQL in
## CHECKOUT_DATABASE_URL). BENCH_ARGS="--rounds 1 --seconds 2".
bench: $(VENV)/.run
	@command -v wrk >/dev/null || { \
		echo "bench: installing wrk (apt-get install wrk)"; \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get install -y -qq wrk >/dev/null 2>&1 \
			|| { $$sudo apt-get update -qq && $$sudo apt-get install -y -qq wrk >/dev/null; }; }
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

## The back office's payments list over 1,000,000 pages (SQLite; PostgreSQL too when
## CHECKOUT_DATABASE_URL names one): server time of a page of 100 rows, filtered and searched,
## against 50 ms. A few minutes. BENCH_ARGS="--pages 100000 --rounds 3".
bench-console: $(VENV)/.run
	$(BIN)/python bench/console_list.py $(BENCH_ARGS)

## Translators: extract every wrapped customer string into checkout/translations/messages.pot
## and bring each catalogue up to date with it.
messages: $(VENV)/.run
	mkdir -p checkout/translations
	$(BIN)/pybabel extract -F babel.cfg -k N_ -o checkout/translations/messages.pot .
	$(BIN)/pybabel update -i checkout/translations/messages.pot -d checkout/translations

## Compile every catalogue (checkout/translations/*/LC_MESSAGES/messages.po) for the app.
translations: $(VENV)/.run
	$(BIN)/pybabel compile -d checkout/translations --statistics
