#!/usr/bin/env bash
# Installs everything the project runs on into git-ignored folders of the checkout, idempotently:
#   .venv/                   the package with its dev and dashboard extras (pip, from PyPI)
#   .stack/kafka/libs/       Apache Kafka broker (KRaft) jars (mvn, from Maven Central)
#   .stack/connect/          a Kafka Connect worker and the MongoDB sink connector (mvn)
#   .stack/spark-jars/       Spark's Kafka source for the pinned pyspark, and the GCS connector (mvn)
#   .stack/bin/ferretdb      FerretDB v1, a MongoDB-protocol server (go, from the Go module proxy)
#   .stack/bin/fake-gcs-server  a Cloud Storage emulator (go install, from the Go module proxy)
#   .stack/apicurio/         Apicurio Registry, a Confluent-compatible schema registry (mvn)
#   chromium, chromedriver   Debian's packages (apt-get), for the dashboard's browser test
# A stamp per part records what was installed; a second run checks stamps and downloads nothing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${STACK_DIR:-$ROOT/.stack}"
KAFKA_VERSION="4.1.1"
FERRETDB_VERSION="v1.24.0"
FAKE_GCS_VERSION="v1.56.1"
APICURIO_VERSION="3.0.9"
PYTHON="${PYTHON:-python3}"
mkdir -p "$STACK/stamps" "$STACK/bin"

log() { printf '[setup] %s\n' "$*"; }
need() { command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required ($2)" >&2; exit 1; }; }
# stamp NAME CONTENT: true when the part was already installed from the same inputs.
stamp_ok() { [ -f "$STACK/stamps/$1" ] && [ "$(cat "$STACK/stamps/$1")" = "$2" ]; }
stamp_set() { printf '%s' "$2" >"$STACK/stamps/$1"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

start=$(date +%s)

# 1. Python virtualenv with the package (editable), its dev and dashboard extras.
need "$PYTHON" "Python 3.10+"
py_key="$(hash_of "$ROOT/pyproject.toml")"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  log "creating .venv"
  "$PYTHON" -m venv "$ROOT/.venv"
fi
if ! stamp_ok venv "$py_key"; then
  log "installing Python packages (pyproject.toml changed or first run)"
  "$ROOT/.venv/bin/pip" install --quiet --upgrade pip
  "$ROOT/.venv/bin/pip" install --quiet -e "$ROOT[dev,dashboard]"
  stamp_set venv "$py_key"
else
  log "python packages: up to date"
fi

# 2. Apache Kafka broker jars. Java 17+ runs them.
need java "a Java 17+ runtime (apt-get install openjdk-17-jre-headless)"
need mvn "Apache Maven (apt-get install maven)"
kafka_key="$(hash_of "$ROOT/scripts/maven/kafka-broker.xml")"
if ! stamp_ok kafka "$kafka_key" || [ ! -d "$STACK/kafka/libs" ]; then
  log "resolving Apache Kafka $KAFKA_VERSION (kafka_2.13 and runtime dependencies) with mvn"
  rm -rf "$STACK/kafka/libs"
  mvn -q -B -f "$ROOT/scripts/maven/kafka-broker.xml" dependency:copy-dependencies \
    -DoutputDirectory="$STACK/kafka/libs" -DincludeScope=runtime
  stamp_set kafka "$kafka_key"
else
  log "kafka $KAFKA_VERSION: up to date"
fi

# 2b. A Kafka Connect worker (Apache Kafka's connect-runtime, distributed mode) and MongoDB's
#     sink connector, one pom: the connector's `all` jar alone into its plugin directory, the
#     rest into the worker's classpath (scripts/connect.py runs them with STACK_CONNECT=1).
connect_key="$(hash_of "$ROOT/scripts/maven/kafka-connect.xml")"
connect_plugin="$STACK/connect/plugins/mongo-kafka-connect"
if ! stamp_ok connect "$connect_key" || [ ! -d "$STACK/connect/libs" ] \
  || [ ! -d "$connect_plugin" ]; then
  log "resolving Kafka Connect $KAFKA_VERSION and org.mongodb.kafka:mongo-kafka-connect with mvn"
  rm -rf "$STACK/connect/libs" "$connect_plugin"
  mvn -q -B -f "$ROOT/scripts/maven/kafka-connect.xml" dependency:copy-dependencies \
    -DoutputDirectory="$STACK/connect/libs" -DincludeScope=runtime \
    -DexcludeArtifactIds=mongo-kafka-connect
  mvn -q -B -f "$ROOT/scripts/maven/kafka-connect.xml" dependency:copy-dependencies \
    -DoutputDirectory="$connect_plugin" -DincludeScope=runtime \
    -DincludeArtifactIds=mongo-kafka-connect
  stamp_set connect "$connect_key"
else
  log "kafka connect $KAFKA_VERSION with the mongodb sink: up to date"
fi

# 3. Spark's Kafka source: connector + kafka-clients + commons-pool2 + token provider. Jars that
#    pyspark already ships (Spark, Scala, Hadoop, compression codecs, slf4j) are left out.
spark_key="$(hash_of "$ROOT/scripts/maven/spark-kafka.xml")"
if ! stamp_ok spark-kafka "$spark_key" || [ ! -d "$STACK/spark-jars" ]; then
  log "resolving org.apache.spark:spark-sql-kafka-0-10_2.13 with mvn"
  rm -rf "$STACK/spark-jars"
  mvn -q -B -f "$ROOT/scripts/maven/spark-kafka.xml" dependency:copy-dependencies \
    -DoutputDirectory="$STACK/spark-jars" -DincludeScope=runtime \
    -DexcludeGroupIds=org.lz4,org.xerial.snappy,org.slf4j,com.github.luben,com.google.code.findbugs,org.apache.hadoop,org.scala-lang,org.scala-lang.modules \
    -DexcludeArtifactIds=spark-tags_2.13
  stamp_set spark-kafka "$spark_key"
else
  log "spark kafka connector: up to date"
fi

# 4. FerretDB v1 (SQLite backend), built from its Go module. Its version file is generated by
#    its own build tooling, so the module is copied out of the read-only cache and stamped.
#    scripts/ferretdb-v1.24.0.patch fixes two v1 bugs this pipeline hits (see the patch and
#    README): _id lookups that scan the whole table, and bulk updates that deadlock.
need go "Go 1.22+"
need patch "patch (apt-get install patch)"
ferret_key="$FERRETDB_VERSION-$(hash_of "$ROOT/scripts/ferretdb-$FERRETDB_VERSION.patch")"
if ! stamp_ok ferretdb "$ferret_key" || [ ! -x "$STACK/bin/ferretdb" ]; then
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy"
  mod_dir="$(go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" \
    | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  src="$STACK/src/ferretdb"
  rm -rf "$src" && mkdir -p "$(dirname "$src")"
  cp -r "$mod_dir" "$src" && chmod -R u+w "$src"
  echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
  patch -s -p1 -d "$src" <"$ROOT/scripts/ferretdb-$FERRETDB_VERSION.patch"
  (cd "$src" && go build -trimpath -o "$STACK/bin/ferretdb" ./cmd/ferretdb)
  stamp_set ferretdb "$ferret_key"
else
  log "ferretdb $FERRETDB_VERSION: up to date"
fi

# 4b. fake-gcs-server, a Cloud Storage emulator (Google's JSON API) that `STACK_GCS=1 make up` and
#     the gs:// tests run on loopback (scripts/gcs.py), so that Spark's GCS connector and
#     google-cloud-storage have a real server to talk to without a Google account.
if ! stamp_ok fake-gcs-server "$FAKE_GCS_VERSION" || [ ! -x "$STACK/bin/fake-gcs-server" ]; then
  log "building fake-gcs-server $FAKE_GCS_VERSION from the Go module proxy"
  GOBIN="$STACK/bin" go install -trimpath "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION"
  stamp_set fake-gcs-server "$FAKE_GCS_VERSION"
else
  log "fake-gcs-server $FAKE_GCS_VERSION: up to date"
fi

# 4c. Apicurio Registry, a schema registry with Confluent's REST API (under /apis/ccompat/v7), for
#     PIPELINE_FORMAT=avro: `STACK_SCHEMA_REGISTRY=1 make up` and the Avro tests run it
#     (scripts/registry.py). Confluent's own registry is not on Maven Central; Apicurio's Quarkus
#     application is (io.apicurio:apicurio-registry-app, classifier `all`, a tar.gz; Java 17).
if ! stamp_ok apicurio "$APICURIO_VERSION" \
    || [ ! -f "$STACK/apicurio/apicurio-registry-app-$APICURIO_VERSION-runner.jar" ]; then
  log "resolving Apicurio Registry $APICURIO_VERSION (io.apicurio:apicurio-registry-app:all) with mvn"
  rm -rf "$STACK/apicurio" && mkdir -p "$STACK/apicurio"
  mvn -q -B dependency:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
    -DoutputDirectory="$STACK/apicurio"
  tar -xzf "$STACK/apicurio/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$STACK/apicurio"
  rm -f "$STACK/apicurio/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
  stamp_set apicurio "$APICURIO_VERSION"
else
  log "apicurio registry $APICURIO_VERSION: up to date"
fi

# 5. Debian's packages (apt-get): `prometheus`, which `STACK_PROMETHEUS=1 make up` runs on the
#    job's metrics endpoint (tests/integration/test_prometheus.py queries it), and `chromium` with
#    `chromium-driver`, which the dashboard's browser test and scripts/bench_dashboard.py drive
#    through Selenium. scripts/stack.py starts its own prometheus (own config, data and port), so
#    the package's system service must not run: service starts are refused during the install
#    (policy-rc.d, as in containers) and one that ran anyway (a systemd host) is stopped.
missing=()
[ -x /usr/bin/prometheus ] || missing+=(prometheus)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing Debian's ${missing[*]} with apt-get"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  apt_() {
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=600 "$@"
  }
  apt-cache show "${missing[@]}" >/dev/null 2>&1 || apt_ update
  own_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_ tee /usr/sbin/policy-rc.d >/dev/null
    $sudo_ chmod +x /usr/sbin/policy-rc.d && own_policy=1
  fi
  rc=0
  apt_ install --no-install-recommends "${missing[@]}" \
    || { apt_ update && apt_ install --no-install-recommends "${missing[@]}"; } || rc=$?
  [ -z "$own_policy" ] || $sudo_ rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || { echo "setup: apt-get install ${missing[*]} failed" >&2; exit "$rc"; }
  if [ -d /run/systemd/system ]; then
    $sudo_ systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [ -s /run/prometheus/prometheus.pid ]; then
    $sudo_ start-stop-daemon --stop --quiet --retry 10 --pidfile /run/prometheus/prometheus.pid \
      --exec /usr/bin/prometheus || true
  fi
else
  log "debian packages: prometheus $(/usr/bin/prometheus --version 2>&1 | head -n1 | cut -d' ' -f3)," \
    "chromium $(dpkg-query -W -f='${Version}' chromium 2>/dev/null)"
fi

log "done in $(( $(date +%s) - start ))s"
