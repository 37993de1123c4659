# The front door. `make run` runs the pipeline end to end on the local stack; `make test` runs the
# tests. Both install what they need first (scripts/setup.sh is idempotent and quick once done).
PY := .venv/bin/python
SEED ?= 42
ORDERS ?= 3000

.PHONY: setup up down status logs topics run run-sasl run-gcs run-avro test unit check lint bench-produce bench-pipeline bench-server clean \
	dist submit cluster-down dashboard bench-dashboard connect connect-down

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

# The same over the local broker's SASL_SSL listener, as a Confluent Cloud client connects: the
# stack opens it on SASL_PORT (a self-signed CA, PLAIN and SCRAM-SHA-512 users, made once) and
# every step uses the KAFKA_* settings of its client.env. A broker already up without the
# listener is refused: `make down` first.
SASL_PORT ?= 9094
SASL_MECHANISM ?= SCRAM-SHA-512
run-sasl: setup
	STACK_KAFKA_SASL_PORT=$(SASL_PORT) $(PY) -m scripts.stack up
	set -a && . "$${STACK_DIR:-.stack}/kafka/sasl/client.env" && set +a && \
	KAFKA_SASL_MECHANISM=$(SASL_MECHANISM) SEED=$(SEED) ORDERS=$(ORDERS) $(PY) -m scripts.run_local

# The same with the checkpoint and the job's log in gs://, on the local Cloud Storage emulator
# (fake-gcs-server on STACK_GCS_PORT, 4443): `stack up` starts it and creates GCS_BUCKET; Spark's
# GCS connector keeps the checkpoint there and the job uploads its log file there at exit.
GCS_BUCKET ?= payments-local
GCS_ENV = STACK_GCS=1 GCS_EMULATOR_HOST=http://127.0.0.1:$${STACK_GCS_PORT:-4443} \
	JOB_LOG_GCS_BUCKET=$(GCS_BUCKET)
run-gcs: setup
	$(GCS_ENV) $(PY) -m scripts.stack up
	$(GCS_ENV) CHECKPOINT_ROOT=gs://$(GCS_BUCKET)/checkpoints SEED=$(SEED) ORDERS=$(ORDERS) \
	$(PY) -m scripts.run_local

# The same on the Avro wire (PIPELINE_FORMAT=avro): the stack starts Apicurio Registry
# (STACK_SCHEMA_REGISTRY_PORT, 8086), the producers register the schemas and send
# Confluent-framed Avro, and the job decodes it with spark-avro, the schemas from the registry.
run-avro: setup
	STACK_SCHEMA_REGISTRY=1 $(PY) -m scripts.stack up
	PIPELINE_FORMAT=avro SEED=$(SEED) ORDERS=$(ORDERS) $(PY) -m scripts.run_local

# The live dashboard (Streamlit, scripts/dashboard) on the job's figures in MongoDB, beside a running
# job or after one: MONGO_DATABASE=<its database> make dashboard (`make run` prints that line).
# DASHBOARD_PORT (8501), DASHBOARD_REFRESH_S (5), DASHBOARD_WINDOW_MIN (60).
dashboard: up
	$(PY) -m scripts.dashboard

# Kafka Connect (scripts/connect.py): a worker in distributed mode from Kafka's own jars with
# MongoDB's sink connector, which upserts what the job publishes with PIPELINE_WRITE_TO=kafka
# (conf/connect/mongo-sink.json). `make connect` starts the stack, the worker (REST API on
# STACK_CONNECT_PORT, 8083) and the sink, and waits until its tasks run; STACK_CONNECT=1 makes
# `make up` do the same. CONNECT_URL=<your Connect cluster> creates the sink there instead.
connect: up
	$(PY) -m scripts.connect up

connect-down:
	$(PY) -m scripts.connect down

# two workers: the suite mostly waits (on Kafka, FerretDB, JVMs starting), half the CPU idle
test: setup
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder --durations=40

unit: setup
	$(PY) -m pytest tests/unit

# The inner loop, before every commit: lint, format, types, the unit tests and one end-to-end
# truth test (every kind of dirt through Kafka -> Spark -> FerretDB, and a replayed batch), in
# two workers. Starts the stack if it is down and leaves it up for the next round.
CHECK_E2E := tests/integration/test_reconcile_e2e.py::test_every_kind_of_dirt_equals_the_truth_and_replay_changes_nothing
check: up
	.venv/bin/ruff check $(LINTED)
	.venv/bin/ruff format --check $(LINTED)
	.venv/bin/mypy
	$(PY) -m pytest -n 2 -q tests/unit $(CHECK_E2E)

LINTED := contract producers streaming sinks conf scripts tests
lint:
	.venv/bin/ruff check $(LINTED)
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
