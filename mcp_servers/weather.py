"""A weather MCP server serving recorded daily observations (stdio transport).

    python -m mcp_servers.weather

The observations are real datasets shipped inside the ``vega-datasets`` wheel (read from
the installed package, never downloaded): ``seattle-weather`` (daily precipitation,
temperatures, wind and conditions, Seattle 2012-2015) and ``sf-temps`` (hourly
temperatures, San Francisco 2010). A city with no dataset is a tool error, which the
caller reports as that city's failure.

``SAGAWORKS_WEATHER_LATENCY`` names a JSON file of ``{"City": seconds}`` read at every
call: a station that answers slowly. The aggregation benchmark uses it to give the three
sources different speeds, and the tests use it to make one city hang.
"""

from __future__ import annotations

import asyncio
import csv
import importlib.util
import json
import os
from functools import cache
from pathlib import Path
from statistics import mean
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("sagaworks-weather", instructions="Recorded daily weather observations by city.")


def _dataset(name: str) -> Path:
    # find_spec locates the package without importing it (its __init__ imports pandas).
    spec = importlib.util.find_spec("vega_datasets")
    if spec is None or not spec.submodule_search_locations:
        raise ToolError("the vega-datasets package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "_data" / name


@cache
def _seattle() -> dict[str, dict[str, Any]]:
    with _dataset("seattle-weather.csv").open(newline="") as handle:
        return {
            row["date"].replace("/", "-"): {
                "precipitation_mm": float(row["precipitation"]),
                "temp_max_c": float(row["temp_max"]),
                "temp_min_c": float(row["temp_min"]),
                "wind_m_s": float(row["wind"]),
                "conditions": row["weather"],
            }
            for row in csv.DictReader(handle)
        }


@cache
def _san_francisco() -> dict[str, dict[str, Any]]:
    hourly: dict[str, list[float]] = {}
    with _dataset("sf-temps.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            # "2010-01-01 00:00:00", degrees Fahrenheit
            hourly.setdefault(row["date"][:10], []).append((float(row["temp"]) - 32) * 5 / 9)
    return {
        day: {
            "temp_max_c": round(max(temps), 1),
            "temp_min_c": round(min(temps), 1),
            "temp_mean_c": round(mean(temps), 1),
        }
        for day, temps in hourly.items()
    }


STATIONS = {"seattle": _seattle, "san francisco": _san_francisco}


async def _station_latency(city: str) -> None:
    path = os.environ.get("SAGAWORKS_WEATHER_LATENCY")
    if not path or not Path(path).exists():
        return
    delays = {name.lower(): float(seconds) for name, seconds in json.loads(Path(path).read_text()).items()}
    if delay := delays.get(city.lower()):
        await asyncio.sleep(delay)


@server.tool()
async def list_cities() -> list[str]:
    """The cities with recorded observations, and the dates each covers."""
    return [f"{city.title()}: {min(data())} to {max(data())}" for city, data in STATIONS.items()]


@server.tool()
async def get_weather(city: str, date: str | None = None) -> dict[str, Any]:
    """The observation for ``city`` on ``date`` (YYYY-MM-DD; default: the latest recorded day)."""
    await _station_latency(city)
    station = STATIONS.get(city.strip().lower())
    if station is None:
        known = ", ".join(c.title() for c in STATIONS)
        raise ToolError(f"no weather station for {city!r}; stations: {known}")
    days = station()
    day = date or max(days)
    if day not in days:
        raise ToolError(f"no observation for {city.title()} on {day}; recorded {min(days)} to {max(days)}")
    return {"city": city.title(), "date": day, **days[day]}


@server.tool()
async def get_pid() -> int:
    """This server's process id (lets an operator or a test find the process)."""
    return os.getpid()


if __name__ == "__main__":
    server.run()
