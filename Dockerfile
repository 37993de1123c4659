# Image for the job, the producers and the dashboard in docker-compose.yml (Spark needs a Java
# runtime).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contract contract
COPY producers producers
COPY streaming streaming
COPY sinks sinks
COPY conf conf
COPY scripts scripts
RUN pip install --no-cache-dir ".[dashboard]"
ENV PYTHONUNBUFFERED=1
