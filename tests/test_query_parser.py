"""The offline parser over the sample data: each question's rows must equal the rows of
SQL written by hand here (independently of the parser and the plan compiler)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError

from sagaworks.activities.errors import ErrorClass
from sagaworks.activities.query.agents import DataAgent, OfflinePlanner
from sagaworks.activities.query.dataset import SAMPLE_TABLES, DataSource
from sagaworks.contracts.query import DataInput, Schema

Y = "CAST(strftime('%Y', date) AS INTEGER)"
M = "CAST(strftime('%m', date) AS INTEGER)"

CASES: list[tuple[str, str]] = [
    ("average temperature by month in 2014",
     f"SELECT {M}, AVG(temp_max) FROM seattle_weather WHERE {Y} = 2014 GROUP BY 1 ORDER BY 1"),
    ("how many rainy days in 2015",
     f"SELECT COUNT(*) FROM seattle_weather WHERE weather = 'rain' AND {Y} = 2015"),
    ("number of days by weather",
     "SELECT weather, COUNT(*) FROM seattle_weather GROUP BY weather ORDER BY weather"),
    ("total precipitation by year",
     f"SELECT {Y}, SUM(precipitation) FROM seattle_weather GROUP BY 1 ORDER BY 1"),
    ("maximum wind by year",
     f"SELECT {Y}, MAX(wind) FROM seattle_weather GROUP BY 1 ORDER BY 1"),
    ("lowest low temperature per year",
     f"SELECT {Y}, MIN(temp_min) FROM seattle_weather GROUP BY 1 ORDER BY 1"),
    ("average wind in january by year",
     f"SELECT {Y}, AVG(wind) FROM seattle_weather WHERE {M} = 1 GROUP BY 1 ORDER BY 1"),
    ("how many snowy days",
     "SELECT COUNT(*) FROM seattle_weather WHERE weather = 'snow'"),
    ("average precipitation by weather",
     "SELECT weather, AVG(precipitation) FROM seattle_weather GROUP BY weather ORDER BY weather"),
    ("monthly total precipitation in 2012",
     f"SELECT {M}, SUM(precipitation) FROM seattle_weather WHERE {Y} = 2012 GROUP BY 1 ORDER BY 1"),
    ("how many days with wind over 7",
     "SELECT COUNT(*) FROM seattle_weather WHERE wind > 7"),
    ("count of foggy days by year",
     f"SELECT {Y}, COUNT(*) FROM seattle_weather WHERE weather = 'fog' GROUP BY 1 ORDER BY 1"),
    ("average high temperature and average low temperature by year",
     f"SELECT {Y}, AVG(temp_max), AVG(temp_min) FROM seattle_weather GROUP BY 1 ORDER BY 1"),
    ("top 3 months by total precipitation in 2015",
     f"SELECT {M} AS m, SUM(precipitation) AS s FROM seattle_weather WHERE {Y} = 2015 GROUP BY 1 "
     "ORDER BY s DESC, m LIMIT 3"),
    ("how many days after 2013",
     f"SELECT COUNT(*) FROM seattle_weather WHERE {Y} > 2013"),
    ("top 5 cars by horsepower",
     "SELECT name, horsepower FROM cars ORDER BY horsepower IS NULL, horsepower DESC, name LIMIT 5"),
    ("average mpg by origin",
     "SELECT origin, AVG(miles_per_gallon) FROM cars GROUP BY origin ORDER BY origin"),
    ("average miles per gallon by cylinders",
     "SELECT cylinders, AVG(miles_per_gallon) FROM cars GROUP BY cylinders ORDER BY cylinders"),
    ("how many cars with more than 6 cylinders",
     "SELECT COUNT(*) FROM cars WHERE cylinders > 6"),
    ("how many japanese cars after 1975",
     "SELECT COUNT(*) FROM cars WHERE origin = 'Japan' AND model_year > 1975"),
    ("number of cars by origin",
     "SELECT origin, COUNT(*) FROM cars GROUP BY origin ORDER BY origin"),
    ("top 3 origins by average horsepower",
     "SELECT origin, AVG(horsepower) AS a FROM cars GROUP BY origin ORDER BY a DESC, origin LIMIT 3"),
    ("average weight by model year",
     "SELECT model_year, AVG(weight_in_lbs) FROM cars GROUP BY model_year ORDER BY model_year"),
    ("maximum acceleration of european cars",
     "SELECT MAX(acceleration) FROM cars WHERE origin = 'Europe'"),
    ("horsepower and weight of cars with 4 cylinders",
     "SELECT name, horsepower, weight_in_lbs FROM cars WHERE cylinders = 4 ORDER BY name"),
    ("bottom 5 cars by mpg",
     "SELECT name, miles_per_gallon FROM cars ORDER BY miles_per_gallon IS NULL, miles_per_gallon, name LIMIT 5"),
    ("average displacement by origin for cars in 1980",
     "SELECT origin, AVG(displacement) FROM cars WHERE model_year = 1980 GROUP BY origin ORDER BY origin"),
    ("how many cars with at least 200 horsepower",
     "SELECT COUNT(*) FROM cars WHERE horsepower >= 200"),
    ("average price by symbol",
     "SELECT symbol, AVG(price) FROM stocks GROUP BY symbol ORDER BY symbol"),
    ("which symbol has the highest average price",
     "SELECT symbol, AVG(price) AS a FROM stocks GROUP BY symbol ORDER BY a DESC, symbol LIMIT 1"),
    ("average price of apple by year",
     f"SELECT {Y}, AVG(price) FROM stocks WHERE symbol = 'AAPL' GROUP BY 1 ORDER BY 1"),
    ("highest price by symbol",
     "SELECT symbol, MAX(price) FROM stocks GROUP BY symbol ORDER BY symbol"),
    ("average microsoft stock price by year since 2005",
     f"SELECT {Y}, AVG(price) FROM stocks WHERE symbol = 'MSFT' AND {Y} >= 2005 GROUP BY 1 ORDER BY 1"),
    ("average price by year and symbol",
     f"SELECT {Y}, symbol, AVG(price) FROM stocks GROUP BY 1, 2 ORDER BY 1, 2"),
    ("how many ibm prices over 100",
     "SELECT COUNT(*) FROM stocks WHERE symbol = 'IBM' AND price > 100"),
]  # fmt: skip

UNANSWERABLE = [
    "what is the airspeed velocity of an unladen swallow",
    "max temperature by month",  # how to combine the temperatures of a month is not said
    "average weather by month",  # weather is not a number
    "top cars",  # top how many, by what
    "how many rainy and snowy days",  # two values for one column
    "average temperature in 20145",
    "drop table cars",
    "",
]


# Paraphrases of CASES questions with one word the parser does not know, which changes nothing.
FILLER_CASES: list[tuple[str, str]] = [
    ("roughly how many rainy days in 2015",
     f"SELECT COUNT(*) FROM seattle_weather WHERE weather = 'rain' AND {Y} = 2015"),
    ("what was the average temperature by month in 2014 approximately",
     f"SELECT {M}, AVG(temp_max) FROM seattle_weather WHERE {Y} = 2014 GROUP BY 1 ORDER BY 1"),
    ("basically how many snowy days",
     "SELECT COUNT(*) FROM seattle_weather WHERE weather = 'snow'"),
    ("so what is the maximum wind by year",
     f"SELECT {Y}, MAX(wind) FROM seattle_weather GROUP BY 1 ORDER BY 1"),
    ("how many days were there really with wind over 7",
     "SELECT COUNT(*) FROM seattle_weather WHERE wind > 7"),
    ("how many cars actually have more than 6 cylinders",
     "SELECT COUNT(*) FROM cars WHERE cylinders > 6"),
    ("hey number of cars by origin",
     "SELECT origin, COUNT(*) FROM cars GROUP BY origin ORDER BY origin"),
    ("average weight by model year kindly",
     "SELECT model_year, AVG(weight_in_lbs) FROM cars GROUP BY model_year ORDER BY model_year"),
    ("average price by symbol historically",
     "SELECT symbol, AVG(price) FROM stocks GROUP BY symbol ORDER BY symbol"),
    ("number of days by weather recorded",
     "SELECT weather, COUNT(*) FROM seattle_weather GROUP BY weather ORDER BY weather"),
]  # fmt: skip

# One word each that could change the answer (a negation, a comparison, a number in words, a
# restricting adjective, a name or a column the schema lacks): refused, never passed over.
MEANING_CHANGING = [
    "how many cars not from japan",
    "how many days without rain",
    "how many days had no snow",
    "how many cars except japanese ones",
    "how many cars excluding japanese",
    "average price by symbol between 2005",
    "how many cars with only 4 cylinders",
    "how many days with wind over 7 or 8",
    "top three cars by horsepower",
    "how many hot days",
    "how many cold days in 2014",
    "how many expensive stocks",
    "how many cheaper cars",
    "average horsepower of heavier cars",
    "average mileage by origin",
    "average mpg by continent",
    "how many cars from Ford",
    "average price of apple by year recently",
    "average price by symbol during the last decade",
    "how many days in 2015 but not in january",
    "top 5 cars by horsepower first",
    "average mpg of cars made in 1970s",
]


def test_the_filler_questions_are_paraphrases_with_one_unknown_word(sample: tuple[DataAgent, Schema, Path]) -> None:
    """Each filler question without its unknown word is a question of the parser's own words,
    so the test is about passing over one word (not about new vocabulary)."""
    _, schema, _ = sample
    from sagaworks.activities.query.parser import _WORD, _tokens

    for question, _ in FILLER_CASES:
        table = next(t for t in schema.tables if t.name in _sql_of(question))
        _, unknown = _tokens(_WORD.findall(question), table)
        assert len(unknown) == 1, (question, unknown)


def _sql_of(question: str) -> str:
    return dict(FILLER_CASES)[question]


@pytest.mark.parametrize(("question", "expected_sql"), FILLER_CASES, ids=[q for q, _ in FILLER_CASES])
def test_an_unknown_filler_word_does_not_refuse_a_recognised_question(
    sample: tuple[DataAgent, Schema, Path], question: str, expected_sql: str
) -> None:
    test_question_gives_the_rows_of_hand_written_sql(sample, question, expected_sql)


@pytest.mark.parametrize("question", MEANING_CHANGING)
def test_an_unknown_word_that_could_change_the_answer_is_refused(
    sample: tuple[DataAgent, Schema, Path], question: str
) -> None:
    test_unanswerable_questions_are_refused_not_guessed(sample, question)


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DataAgent, Schema, Path]]:
    path = tmp_path_factory.mktemp("query") / "app.db"
    agent = DataAgent(DataSource(f"sqlite:///{path}", SAMPLE_TABLES, sample=True))
    yield agent, agent.catalog(), path
    agent.dispose()


def test_the_table_has_enough_questions() -> None:
    assert len(CASES) >= 30
    assert len({q for q, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("question", "expected_sql"), CASES, ids=[q for q, _ in CASES])
def test_question_gives_the_rows_of_hand_written_sql(
    sample: tuple[DataAgent, Schema, Path], question: str, expected_sql: str
) -> None:
    agent, schema, path = sample
    plan = OfflinePlanner().plan(question, schema)
    result = agent.run(DataInput(plan=plan))
    with sqlite3.connect(path) as conn:
        expected = [list(row) for row in conn.execute(expected_sql)]
    assert expected, "the hand-written SQL must select something"
    assert result.rows == [[pytest.approx(v) if isinstance(v, float) else v for v in row] for row in expected]


@pytest.mark.parametrize("question", UNANSWERABLE)
def test_unanswerable_questions_are_refused_not_guessed(sample: tuple[DataAgent, Schema, Path], question: str) -> None:
    _, schema, _ = sample
    with pytest.raises(ApplicationError) as refused:
        OfflinePlanner().plan(question, schema)
    assert refused.value.type == ErrorClass.VALIDATION and refused.value.non_retryable
    assert "could not understand" in refused.value.message


def test_sample_data_is_the_shipped_datasets(sample: tuple[DataAgent, Schema, Path]) -> None:
    _, _, path = sample
    with sqlite3.connect(path) as conn:
        counts = {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in SAMPLE_TABLES}
    # seattle-weather.csv: 2012-2015 daily; cars.json: 406 cars; stocks.csv: 5 symbols monthly.
    assert counts == {"seattle_weather": 1461, "cars": 406, "stocks": 560}


@pytest.mark.parametrize(
    ("question", "expected_sql"),
    [CASES[0], CASES[3], CASES[15], CASES[29], CASES[33]],
    ids=lambda v: v if " " in v and not v.startswith("SELECT") else "",
)
def test_the_same_plans_on_every_backend(
    sample: tuple[DataAgent, Schema, Path], db_url: str, question: str, expected_sql: str
) -> None:
    """On PostgreSQL the plan's date parts become EXTRACT, and the rows stay the same."""
    _, schema, path = sample
    other = DataAgent(DataSource(db_url, SAMPLE_TABLES, sample=True))
    try:
        result = other.run(DataInput(plan=OfflinePlanner().plan(question, other.catalog())))
    finally:
        other.dispose()
    with sqlite3.connect(path) as conn:
        expected = [list(row) for row in conn.execute(expected_sql)]
    assert [[float(v) if not isinstance(v, str) else v for v in row] for row in result.rows] == [
        [pytest.approx(float(v)) if not isinstance(v, str) else v for v in row] for row in expected
    ]


def test_your_own_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """QUERY_DATABASE_URL + QUERY_TABLES: introspected columns, only the listed tables."""
    from sagaworks.activities.query.dataset import data_source_from_env

    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE sales (region TEXT, amount REAL, units INTEGER)")
        conn.execute("CREATE TABLE secrets (password TEXT)")
        conn.executemany(
            "INSERT INTO sales VALUES (?, ?, ?)", [("north", 10.5, 1), ("south", 3.0, 2), ("north", 4.5, 3)]
        )
    monkeypatch.setenv("QUERY_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("QUERY_TABLES", "sales")
    source = data_source_from_env("sqlite:///unused.db")
    assert (source.tables, source.sample) == (("sales",), False)
    agent = DataAgent(source)
    try:
        plan = OfflinePlanner().plan("total amount by region", agent.catalog())
        assert agent.run(DataInput(plan=plan)).rows == [["north", 15.0], ["south", 3.0]]
        with pytest.raises(ApplicationError, match="table secrets is not allowed"):
            agent.run(DataInput(plan=plan.model_copy(update={"sql": "SELECT password FROM secrets"})))
    finally:
        agent.dispose()
