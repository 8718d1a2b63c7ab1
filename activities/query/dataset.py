"""The tables a question may be about: the shipped sample data or the user's own.

The sample data is real: three datasets the ``vega-datasets`` package ships inside its
wheel (Seattle's daily weather 2012-2015, the classic cars dataset, five stock prices
2000-2010). They are read from the installed package's files (never fetched) and loaded
into the application database on first use.

``QUERY_DATABASE_URL`` points the data agent at another database and ``QUERY_TABLES``
(comma-separated) allow-lists its tables; their columns are introspected.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Date,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    func,
    inspect,
    select,
)
from sqlalchemy import types as sqltypes

from sagaworks.contracts.query import ColumnInfo, Schema, TableInfo

SAMPLE = MetaData()

seattle_weather = Table(
    "seattle_weather",
    SAMPLE,
    Column("date", Date, primary_key=True),
    Column("precipitation", Float, nullable=False),
    Column("temp_max", Float, nullable=False),
    Column("temp_min", Float, nullable=False),
    Column("wind", Float, nullable=False),
    Column("weather", String(16), nullable=False),
)
cars = Table(
    "cars",
    SAMPLE,
    Column("id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("miles_per_gallon", Float),
    Column("cylinders", Integer, nullable=False),
    Column("displacement", Float, nullable=False),
    Column("horsepower", Float),
    Column("weight_in_lbs", Integer, nullable=False),
    Column("acceleration", Float, nullable=False),
    Column("model_year", Integer, nullable=False),
    Column("origin", String(16), nullable=False),
)
stocks = Table(
    "stocks",
    SAMPLE,
    Column("symbol", String(8), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("price", Float, nullable=False),
)

SAMPLE_SYNONYMS: dict[str, dict[str, list[str]]] = {
    # table -> column (or "" for the table itself) -> phrases people use for it
    "seattle_weather": {
        "": ["weather", "seattle", "days", "day", "rows"],
        "precipitation": ["precipitation", "rain fall", "rainfall"],
        "temp_max": [
            "max temperature",
            "maximum temperature",
            "high temperature",
            "temperature",
            "temperatures",
            "high",
        ],
        "temp_min": ["min temperature", "minimum temperature", "low temperature", "low"],
        "wind": ["wind", "wind speed"],
        "weather": ["weather type", "conditions", "condition", "weather"],
    },
    "cars": {
        "": ["cars", "car", "vehicles", "models", "automobiles"],
        "name": ["name", "names", "model"],
        "miles_per_gallon": ["miles per gallon", "mpg", "fuel economy"],
        "cylinders": ["cylinders", "cylinder"],
        "displacement": ["displacement"],
        "horsepower": ["horsepower", "hp", "power"],
        "weight_in_lbs": ["weight", "weight in lbs"],
        "acceleration": ["acceleration"],
        "model_year": ["model year", "year", "years"],
        "origin": ["origin", "origins", "region", "regions", "country"],
    },
    "stocks": {
        "": ["stocks", "stock", "shares", "companies", "company"],
        "symbol": ["symbol", "symbols", "ticker", "tickers"],
        "date": ["date", "dates"],
        "price": ["price", "prices", "stock price", "share price"],
    },
}
VALUE_SYNONYMS: dict[str, dict[str, list[str]]] = {
    "weather": {"rain": ["rainy"], "sun": ["sunny"], "snow": ["snowy"], "fog": ["foggy"], "drizzle": ["drizzly"]},
    "symbol": {"AAPL": ["apple"], "MSFT": ["microsoft"], "AMZN": ["amazon"], "GOOG": ["google"], "IBM": []},
    "origin": {"USA": ["american", "us"], "Europe": ["european"], "Japan": ["japanese"]},
}
LABELS = {"cars": "name"}
VALUES_LIMIT = 30
"""Text columns with at most this many distinct values list them for the parser."""


def _vega_file(name: str) -> Path:
    # Located without importing vega_datasets (which imports pandas); the files ship in the wheel.
    spec = importlib.util.find_spec("vega_datasets")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the vega-datasets package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "_data" / name


def _sample_rows() -> Iterator[tuple[Table, list[dict[str, Any]]]]:
    with _vega_file("seattle-weather.csv").open(newline="") as f:
        yield (
            seattle_weather,
            [
                {
                    "date": datetime.strptime(r["date"], "%Y/%m/%d").date(),
                    "precipitation": float(r["precipitation"]),
                    "temp_max": float(r["temp_max"]),
                    "temp_min": float(r["temp_min"]),
                    "wind": float(r["wind"]),
                    "weather": r["weather"],
                }
                for r in csv.DictReader(f)
            ],
        )
    records = json.loads(_vega_file("cars.json").read_text())
    yield (
        cars,
        [
            {
                "id": index + 1,
                "name": r["Name"],
                "miles_per_gallon": r["Miles_per_Gallon"],
                "cylinders": r["Cylinders"],
                "displacement": float(r["Displacement"]),
                "horsepower": r["Horsepower"],
                "weight_in_lbs": r["Weight_in_lbs"],
                "acceleration": float(r["Acceleration"]),
                "model_year": date.fromisoformat(r["Year"]).year,
                "origin": r["Origin"],
            }
            for index, r in enumerate(records)
        ],
    )
    with _vega_file("stocks.csv").open(newline="") as f:
        yield (
            stocks,
            [
                {
                    "symbol": r["symbol"],
                    "date": datetime.strptime(r["date"], "%b %d %Y").date(),
                    "price": float(r["price"]),
                }
                for r in csv.DictReader(f)
            ],
        )


def load_sample_data(engine: Engine) -> None:
    """Create and fill the sample tables unless they are there already (idempotent).

    Each table fills in one transaction, so a concurrent loader sees it empty or full; a
    loader that loses the race to create a table fails and its retry finds the table full.
    """
    SAMPLE.create_all(engine)
    for table, rows in _sample_rows():
        with engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(table)).scalar_one() == 0:
                conn.execute(table.insert(), rows)


@dataclass(frozen=True)
class DataSource:
    """Where the data agent reads: a database URL and the tables it may touch."""

    url: str
    tables: tuple[str, ...]
    sample: bool
    """Whether these are the shipped sample tables (loaded on first use)."""


SAMPLE_TABLES = tuple(SAMPLE.tables)


def data_source_from_env(app_database_url: str) -> DataSource:
    """``QUERY_DATABASE_URL`` + ``QUERY_TABLES`` when set, else the sample tables in the
    application database."""
    url = os.environ.get("QUERY_DATABASE_URL")
    if not url:
        return DataSource(app_database_url, SAMPLE_TABLES, sample=True)
    tables = tuple(t.strip() for t in os.environ.get("QUERY_TABLES", "").split(",") if t.strip())
    if not tables:
        raise SystemExit("QUERY_DATABASE_URL needs QUERY_TABLES: the comma-separated tables questions may use")
    return DataSource(url, tables, sample=False)


def _kind(column_type: Any) -> str:
    if isinstance(column_type, (sqltypes.Date, sqltypes.DateTime)):
        return "date"
    if isinstance(column_type, (sqltypes.Integer, sqltypes.Float, sqltypes.Numeric)):
        return "number"
    return "text"


def describe(engine: Engine, tables: tuple[str, ...]) -> Schema:
    """The schema of ``tables`` as the parser needs it: kinds, synonyms, few-valued columns."""
    inspector = inspect(engine)
    present = set(inspector.get_table_names())
    missing = [t for t in tables if t not in present]
    if missing:
        raise ValueError(f"QUERY_TABLES: no such table(s) {', '.join(missing)}")
    described = []
    metadata = MetaData()
    for name in tables:
        table = Table(name, metadata, autoload_with=engine)
        synonyms = SAMPLE_SYNONYMS.get(name, {})
        columns = []
        for column in table.columns:
            if column.name == "id" and column.primary_key and name in SAMPLE.tables:
                continue  # a surrogate key, nothing to ask about
            kind = _kind(column.type)
            values: list[str] = []
            if kind == "text":
                with engine.connect() as conn:
                    distinct = conn.execute(select(column).distinct().limit(VALUES_LIMIT + 1)).scalars().all()
                if len(distinct) <= VALUES_LIMIT:
                    values = sorted(str(v) for v in distinct if v is not None)
            columns.append(
                ColumnInfo(
                    name=column.name,
                    kind=kind,  # type: ignore[arg-type]
                    synonyms=synonyms.get(column.name, [column.name.replace("_", " ")]),
                    values=values,
                    value_synonyms={
                        v: words for v, words in VALUE_SYNONYMS.get(column.name, {}).items() if v in values
                    },
                )
            )
        described.append(
            TableInfo(
                name=name,
                synonyms=synonyms.get("", [name.replace("_", " ")]),
                label=LABELS.get(name),
                columns=columns,
            )
        )
    return Schema(tables=described)


def engine_for(url: str) -> Engine:
    """A plain engine for loading and introspection (the data agent reads through its own)."""
    return create_engine(url)
