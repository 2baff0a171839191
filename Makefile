# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MDM_DATABASE_URL ?= sqlite:///./mdm.db
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/postgres
export MDM_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/mdm_test
export MDM_BENCH_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/mdm_bench

.PHONY: run test lint typecheck pytest bench soak eval install demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/mdm migrate
	$(BIN)/mdm demo
	MDM_WEBHOOK_ALLOW_PRIVATE=$${MDM_WEBHOOK_ALLOW_PRIVATE:-true} $(BIN)/mdm serve --deliver

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest tests

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m tests.bench.bench_ingest
	$(BIN)/python -m tests.bench.bench_matching --prewarm
	$(BIN)/python -m tests.bench.bench_reviews
	$(BIN)/python -m tests.bench.bench_mapping
	$(BIN)/python -m tests.bench.bench_survivorship
	$(BIN)/python -m tests.bench.bench_webhooks
	$(BIN)/python -m tests.bench.bench_trust
	$(BIN)/python -m tests.bench.bench_dedupe
	$(BIN)/python -m tests.bench.bench_dedupe --reuse-seed --kills 0 --no-concurrent --spark 'local[2]'
	$(BIN)/python -m tests.bench.bench_dedupe --online 100000
	$(BIN)/python -m tests.bench.bench_dedupe --online 100000 --kills 0 --no-concurrent --spark 'local[2]'
	$(BIN)/python -m tests.bench.bench_dedupe --online 1000000 --kills 0 --no-concurrent
	$(BIN)/python -m tests.bench.bench_dedupe --online 1000000 --kills 0 --no-concurrent --spark 'local[2]'
	$(BIN)/python -m tests.bench.bench_spark --records 1000000

# The long reliability runs: PostgreSQL restarted under load, 10 shuffled orders of 5,000
# records, and the mixed load against a million persons.
soak: $(STAMP)
	MDM_SOAK=1 $(BIN)/python -m pytest tests/reliability -m soak
	$(BIN)/python -m tests.bench.bench_load

eval: $(STAMP)
	$(BIN)/python -m tests.bench.eval_matching --records 10000 --train
	$(BIN)/python -m tests.bench.eval_matching --records 100000 --train

clean:
	rm -rf $(VENV) mdm.db mdm.db-wal mdm.db-shm .mypy_cache .ruff_cache
