# The LeadHub image docker-compose.yml runs as workers, the web endpoint and
# the one-off set-up: this checkout, installed in place (it reads config/ and
# samples/ next to the code) with its pinned dependencies.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY connectors connectors
COPY flows flows
COPY leadhub leadhub
COPY transforms transforms
COPY config config
COPY samples samples
COPY prefect.yaml ./
RUN pip install --no-cache-dir -c constraints.txt -e . \
    && useradd --create-home leadhub && chown -R leadhub /app
USER leadhub
ENV LEADHUB_HOME=/app LEADHUB_CONFIG=/config/leadhub.yaml \
    PREFECT_SERVER_ANALYTICS_ENABLED=false DO_NOT_TRACK=1
