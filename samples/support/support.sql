-- The sample support database the reference SQLite MCP server serves
-- (`make install` builds samples/support/support.db from this file).
CREATE TABLE customers (
    email TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    tier TEXT NOT NULL CHECK (tier IN ('free', 'standard', 'premium')),
    since DATE NOT NULL
);
INSERT INTO customers VALUES
    ('ada@example.com', 'Ada Lovelace', 'premium', '2021-03-01'),
    ('grace@example.com', 'Grace Hopper', 'standard', '2022-07-15'),
    ('alan@example.com', 'Alan Turing', 'free', '2024-01-09');

CREATE TABLE products (
    plan TEXT PRIMARY KEY,
    monthly_price_eur REAL NOT NULL,
    seats INTEGER NOT NULL,
    features TEXT NOT NULL
);
INSERT INTO products VALUES
    ('starter', 0, 1, 'one workflow queue, community support'),
    ('team', 49, 10, 'saga dashboards, email support, 99.9% SLA'),
    ('enterprise', 499, 250, 'SSO, audit log, 24/7 support, 99.99% SLA');

CREATE TABLE incidents (
    opened DATE NOT NULL,
    component TEXT NOT NULL,
    summary TEXT NOT NULL
);
INSERT INTO incidents VALUES
    ('2026-11-20', 'api', 'elevated 502 errors on /api/workflows for 12 minutes'),
    ('2026-11-22', 'billing', 'duplicate invoice emails sent to 40 customers');
