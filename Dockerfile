# The sagaworks worker image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY activities ./activities
COPY client ./client
COPY mcp_servers ./mcp_servers
COPY worker.py ./
RUN pip install --no-cache-dir .
USER nobody
CMD ["python", "-m", "worker"]
