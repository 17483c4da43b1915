# The image of docker-compose.yml's workers and web view: gitfree with its Prefect and ui extras. No git: gitfree
# versions data without it (commit, pull, tag, gc, fsck and gitfree-flows run with no git on PATH), and
# export only writes a .dvc file for a git+DVC project elsewhere.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY gitfree ./gitfree
COPY examples ./examples
# constraints.txt: the Prefect of the compose file's server (3.8.8) and the FastAPI it works with. An older
# pip (23.2) gives up resolving these dependencies; the current one takes seconds, as in the Makefile.
RUN pip install --no-cache-dir --upgrade pip && pip install --no-cache-dir -c constraints.txt ".[prefect,ui]"
ENV GITFREE_CACHE_DIR=/cache
