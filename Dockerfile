# The sagaworks worker image (used by docker-compose.yml).
#
# It carries the three MCP servers of mcp_servers/servers.toml, installed at build time
# from the package registries (Debian, npm, PyPI) as `make install` installs them, so
# nothing is fetched when the worker runs: node and the reference filesystem server
# (npm), the reference SQLite server in its own environment (it needs mcp 1.x; ours is
# 2.x) and the sample support database it serves.

# Debian trixie: its nodejs is 20.x, which the filesystem server's dependencies ask for
# (lru-cache, brace-expansion, @hono/node-server: node >= 20; bookworm has 18).
# npm is needed only to install the filesystem server: it stays in this stage.
FROM python:3.11-slim-trixie AS node-modules
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /app/mcp_servers
COPY mcp_servers/package.json mcp_servers/package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM python:3.11-slim-trixie
RUN apt-get update && apt-get install -y --no-install-recommends nodejs && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The SQLite MCP server's own environment ({root}/.venv-mcp-sqlite in servers.toml).
RUN python -m venv .venv-mcp-sqlite \
    && .venv-mcp-sqlite/bin/pip install --no-cache-dir 'mcp-server-sqlite==2025.4.25' 'mcp==1.30.0'
COPY pyproject.toml README.md ./
COPY contracts ./contracts
COPY workflows ./workflows
COPY activities ./activities
COPY client ./client
COPY mcp_servers ./mcp_servers
COPY --from=node-modules /app/mcp_servers/node_modules ./mcp_servers/node_modules
COPY sagaworks ./sagaworks
COPY worker.py ./
# Sample inputs: the catalog offers them in the console and `saga catalog`.
COPY samples ./samples
# Editable, so the package's root is /app, where servers.toml's {root} finds what this image
# builds beside the code (node_modules, .venv-mcp-sqlite, support.db); every family's extra.
RUN pip install --no-cache-dir -e '.[all]' \
    && python -c "import sqlite3, pathlib; sqlite3.connect('samples/support/support.db').executescript(pathlib.Path('samples/support/support.sql').read_text())"
USER nobody
CMD ["python", "-m", "sagaworks.worker"]
