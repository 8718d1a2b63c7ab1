# The sagaworks worker image (used by docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY workflows ./workflows
COPY contracts ./contracts
COPY activities ./activities
COPY client ./client
COPY worker.py ./
# Sample inputs: the catalog offers them in the console and `saga catalog`.
COPY samples ./samples
RUN pip install --no-cache-dir .
USER nobody
CMD ["python", "-m", "worker"]
