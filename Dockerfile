# The worker image of docker-compose.yml: gitfree with its Prefect extra.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gitfree ./gitfree
COPY examples ./examples
RUN pip install --no-cache-dir ".[prefect]"
ENV GITFREE_CACHE_DIR=/cache
