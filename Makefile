# The front door. `make run` runs the pipeline end to end on the local stack; `make test` runs the
# tests. Both install what they need first (scripts/setup.sh is idempotent and quick once done).
PY := .venv/bin/python
SEED ?= 42
ORDERS ?= 3000

.PHONY: setup up down status logs topics run test unit lint bench-produce bench-pipeline bench-server clean \
	dist submit cluster-down dashboard bench-dashboard

setup:
	bash scripts/setup.sh

up: setup
	$(PY) -m scripts.stack up

down:
	$(PY) -m scripts.stack down

status:
	$(PY) -m scripts.stack status

logs:
	$(PY) -m scripts.stack logs

# The Spark cluster: `STACK_SPARK_WORKERS=2 make up` starts a master and two workers with the
# stack; `make submit` runs the job there with spark-submit (SUBMIT_ARGS are the job's flags);
# `make cluster-down` stops only the cluster. `make dist` zips the packages for --py-files.
SUBMIT_ARGS ?= --available-now --summary

dist:
	$(PY) -m scripts.dist

submit: dist
	$(PY) -m scripts.submit $(SUBMIT_ARGS)

cluster-down:
	$(PY) -m scripts.cluster down

topics: up
	$(PY) -m producers.topics

# End to end: stack up, the run's topics, a seeded dirty scenario into Kafka (with its ground
# truth), the streaming job over everything in Kafka, a summary of outcomes by status, and the
# check of MongoDB against the truth (scripts/run_local.py).
run: up
	SEED=$(SEED) ORDERS=$(ORDERS) $(PY) -m scripts.run_local

# The live dashboard (Streamlit, scripts/dashboard) on the job's figures in MongoDB, beside a running
# job or after one: MONGO_DATABASE=<its database> make dashboard (`make run` prints that line).
# DASHBOARD_PORT (8501), DASHBOARD_REFRESH_S (5), DASHBOARD_WINDOW_MIN (60).
dashboard: up
	$(PY) -m scripts.dashboard

test: setup
	$(PY) -m pytest

unit: setup
	$(PY) -m pytest tests/unit

lint:
	.venv/bin/ruff check producers streaming sinks conf scripts tests
	.venv/bin/mypy

bench-produce: up
	$(PY) -m scripts.bench_produce

bench-pipeline: up
	$(PY) -m scripts.bench_pipeline throughput

bench-server: up
	$(PY) -m scripts.bench_server

bench-dashboard: up
	$(PY) -m scripts.bench_dashboard

clean: down
	rm -rf .stack/kafka/data .stack/ferretdb/data checkpoints
