"""Families and the registry that finds them (``sagaworks.Family``, entry points).

A family is declared once, as a :class:`Family`, and registered through the entry-point
group ``sagaworks.families``: the worker serves every registered family, and the ``saga``
CLI, the HTTP API, the console, schedules, trace, restart, postmortem and the demo start
and describe any of them. Nothing lists families by hand, the built-in ones included.

Importing this module is cheap (no Temporal client, no family): a declaration may name its
workflow, input model, activities and plugins as ``"module:attr"`` strings, imported the
first time they are used, so ``saga catalog`` lists every family without importing one.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, Union, cast

if TYPE_CHECKING:  # the engine's own heavier modules, imported where they are used
    from concurrent.futures import Executor

    from pydantic import BaseModel
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.worker import Plugin

    from sagaworks._db import Database

ENTRY_POINT_GROUP = "sagaworks.families"
"""The entry-point group families register under (``[project.entry-points."sagaworks.families"]``)."""

T = TypeVar("T")
S = TypeVar("S")
InputT = TypeVar("InputT", bound="BaseModel")

Ref: TypeAlias = T | str
"""An object, or where it lives as ``"package.module:attr"`` (imported on first use)."""


def resolve(ref: Ref[T]) -> T:
    """The object ``ref`` names (``"module:attr.attr"``), or ``ref`` itself if it is one."""
    if not isinstance(ref, str):
        return ref
    module, sep, attr = ref.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"{ref!r}: expected 'package.module:attribute'")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj  # type: ignore[no-any-return]  # whatever the reference names; the caller's type says what it must be


def lazy(ref: str) -> Callable[..., Any]:
    """A function that imports ``"module:function"`` on its first call and forwards to it.

    For a declaration's small helpers (a workflow id from the input) that live in a module
    too heavy to import just to list the families."""

    @functools.cache
    def target() -> Callable[..., Any]:
        return resolve(ref)

    def call(*args: Any, **kwargs: Any) -> Any:
        return target()(*args, **kwargs)

    call.__name__ = call.__qualname__ = ref.rpartition(":")[2]
    return call


@dataclass(frozen=True)
class WorkerResources:
    """What a family's activities may be built from: the worker's shared resources.

    A family whose activities need none of it declares them as a plain list of functions;
    otherwise its ``activities`` is a function taking these.
    """

    db: Database
    """The application database (exactly-once store, breakers, the families' tables)."""
    cpu_pool: Executor | None = None
    """The worker's process pool, for CPU-bound parts of threaded activities (None: none)."""
    settings: tuple[object, ...] = ()
    """Settings objects handed to the worker (one per type); see :meth:`setting`."""

    def setting(self, kind: type[S]) -> S | None:
        """The settings object of type ``kind`` the worker was given, or None (the family
        then reads its own from the environment)."""
        return next((s for s in self.settings if isinstance(s, kind)), None)


Activities = Sequence[Callable[..., Any]] | Callable[[WorkerResources], Sequence[Callable[..., Any]]] | str
"""A family's activities: a list of functions, or a function building them from the
worker's :class:`WorkerResources`, or where either lives (``"module:attr"``)."""

PluginRef = Union["Plugin", Callable[[], Union["Plugin", Sequence["Plugin"]]], str]
"""A Temporal worker plugin, or a function returning one or several (called once per
worker however many families name it), or where either lives."""


@dataclass(frozen=True)
class ApprovalDeclaration:
    """What a family declares about its approval (``Family.approval``), for the CLI, the
    API and the console: ``saga approve|reject`` and the console's form serve any family
    that has one, in its own words."""

    subject: str = "this run"
    """What waits for the decision (``this request``, ``this post``)."""
    deadline: str = ""
    """How long it waits, in words (shown when the run's status gives no deadline)."""
    escalation: str = "it is rejected automatically"
    """What a missed deadline does, in words (``it is asked of the second group``)."""


class RunRefused(Exception):
    """A valid input that this deployment's configuration refuses to start or schedule
    (the message names the setting)."""


@dataclass(frozen=True)
class DemoUpdate:
    """An update the demo sends to a run it started."""

    name: str
    arg: dict[str, Any]
    when_step: str = ""
    """The step the run must reach first (empty: none): until then the update's validator
    refuses it, and the demo sends it again."""


@dataclass(frozen=True)
class DemoRun:
    """A sample that ``saga demo`` runs, how it is expected to end and what it must produce."""

    sample: str
    """Relative to the family's ``samples_dir``."""
    expect: str = "COMPLETED"
    """COMPLETED, FAILED or CANCELED; RUNNING for a long-lived run the demo leaves open."""
    updates: tuple[DemoUpdate, ...] = ()
    """Updates the demo sends, in order (an approval; a ticket's assign and resolve)."""
    shown_at: str = ""
    """For a RUNNING run: the demo shows it once its status's current step contains this."""
    stops_agent: str = ""
    """A query agent served by ``saga dev up`` (``viz``) that the demo stops first: it runs
    the sample until the agent's breaker is open and shows that run, which must complete
    with the agent's fallback and name the open breaker; then it serves the agent again and
    a run after the breaker's trial time must close it. Runs after the family's other demos."""
    result_has: tuple[str, ...] = ()
    """Dotted paths into the JSON result that must be present and non-empty (not null,
    0, false, "" or an empty list or object) for a COMPLETED run to count: a run that
    completed without doing its work (every feed failed, no row returned) is a failure."""
    result_check: Callable[[Any], bool] | None = None
    """A predicate the JSON result must also satisfy, where a path is not enough (a digest
    with nothing new is fine, one whose every feed failed is not)."""
    result_means: str = ""
    """What the result must show, for people (``articles stored``, ``a chart``)."""

    def missing_from(self, result: Any) -> list[str]:
        """What ``result`` (JSON data) lacks: the :attr:`result_has` paths it lacks or leaves
        empty, and :attr:`result_means` if :attr:`result_check` refuses it."""
        missing = [path for path in self.result_has if not _non_empty(_at(result, path))]
        if self.result_check is not None and not self.result_check(result):
            missing.append(self.result_means or "the result check")
        return missing


_ABSENT = object()


def _at(data: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(data, Mapping) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return _ABSENT
    return data


def _non_empty(value: Any) -> bool:
    return value is not _ABSENT and value is not None and value not in (0, False, "") and value != [] and value != {}


class Family(Generic[InputT]):
    """One workflow family: what users start, and everything the worker serves for it.

    Register it under the entry-point group ``sagaworks.families``. Fields that name code
    (workflow, input model, activities, plugins...) take the object itself or where it
    lives as ``"package.module:attr"``, imported the first time it is needed.
    """

    def __init__(
        self,
        name: str,
        *,
        workflow: Ref[type],
        input_model: Ref[type[InputT]],
        description: str = "",
        workflow_id: Callable[[InputT], str] | None = None,
        id_reuse_policy: WorkflowIDReusePolicy | str = "ALLOW_DUPLICATE",
        conflict_message: Callable[[InputT], str] | None = None,
        workflow_type: str | None = None,
        activities: Activities = (),
        cpu_activities: Ref[Sequence[Callable[..., Any]] | Callable[[], Sequence[Callable[..., Any]]]] = (),
        llm_activities: Activities = (),
        llm_steps: Sequence[str] = (),
        helper_workflows: Sequence[Ref[type]] = (),
        plugins: Sequence[PluginRef] = (),
        signals: Sequence[str] = ("pause", "resume"),
        updates: Sequence[str] = (),
        samples: Sequence[str] = (),
        samples_dir: Path | str | None = None,
        path_field: str | None = None,
        path_is_folder: bool = False,
        rerun_field: str | None = None,
        demo: Sequence[DemoRun] = (),
        demo_after: Sequence[str] = (),
        folder_family: str | None = None,
        approval: ApprovalDeclaration | None = None,
        refusal: Callable[[InputT], str | None] | None = None,
        extra: str | None = None,
        requires: Sequence[str] = (),
    ) -> None:
        """
        Args:
            name: What users type: ``saga run NAME``, ``POST /api/workflows/NAME``.
            workflow: The workflow class (its ``run`` takes one ``input_model``).
            input_model: The pydantic model of the workflow's input.
            description: One line, shown by ``saga catalog`` and the console.
            workflow_id: The workflow id a run of an input gets; with ``id_reuse_policy``
                it decides whether a second start of the same input is refused (default:
                ``NAME-<random>``, every start a new run).
            id_reuse_policy: A ``WorkflowIDReusePolicy`` or its name.
            conflict_message: What a refused start tells the user.
            workflow_type: The Temporal workflow type name, when ``workflow`` is a string
                and the type is not the class name after the colon.
            activities: The family's activities on the worker's main task queue.
            cpu_activities: Pure CPU-bound module functions (or a function listing them),
                served from the worker's process pool on its CPU task queue (they must pickle).
            llm_activities: Activities of the rate-limited LLM task queue.
            llm_steps: The steps that call the model through the LLM gateway
                (:class:`sagaworks.LLM`), each by its step name (the summary the step
                runner schedules it with) or its activity type. Declaring them is a
                promise the test suite checks for every family that makes it: the
                activities take the worker's gateway (``resources.setting(LLM)``), so its
                provider, budget and breaker apply; when the provider fails they fall
                back and say so, the gateway's ``LLMAnswer.fallback`` kept in a
                ``fallback`` (or ``fallbacks``) field of the step's result or the run's,
                or as the ``error`` of a :class:`sagaworks.BranchOutcome` whose status is
                ``fallback`` (what :func:`sagaworks.with_fallback` records);
                and the family's demo completes with every call failing, and within the
                provider's limits of requests and tokens with many runs at once.
            helper_workflows: Workflows it starts as children; served, never started by users.
            plugins: Temporal worker plugins its activities or workflows need (MCP...).
            signals: The signals a run accepts (the API forwards only these).
            updates: The updates a run accepts (approve, assign...; the API forwards only these).
            samples: Sample inputs (JSON files of ``input_model``), relative to ``samples_dir``.
            samples_dir: Where ``samples`` and the demo's samples live.
            path_field: The input field a path argument fills (``saga run document FILE``).
            path_is_folder: The path argument must be a folder (otherwise a file).
            rerun_field: A field whose value may run only once (an order id): the demo and
                the console's sample buttons give it a fresh suffix so a sample runs again.
            demo: What ``saga demo`` runs of this family.
            demo_after: Families whose demos must run before this one's (they store what
                its demo reads).
            folder_family: The family a folder given as the path argument starts instead.
            approval: Set for a family whose runs wait for a human decision
                (:class:`sagaworks.Approval`): its ``approve`` and ``reject`` updates are then
                accepted, and ``saga approve|reject``, the API and the console offer them in
                the declaration's words.
            refusal: Why the deployment's configuration refuses an input (naming the
                setting), or None: clients ask before they start or schedule a run
                (:meth:`check_allowed`), and the worker refuses again what runs started any
                other way ask for.
            extra: The distribution's extra that installs what ``requires`` names.
            requires: Top-level modules it needs beyond the engine: if one is missing, the
                family is listed as unavailable with the ``pip install`` that adds it.
        """
        if not name or not isinstance(name, str):
            raise ValueError(f"a family's name must be a non-empty string, not {name!r}")
        self.name = name
        self._workflow = workflow
        self._input_model = input_model
        self.description = description
        self._workflow_id = workflow_id
        self._id_reuse_policy = id_reuse_policy
        self._conflict_message = conflict_message
        self._workflow_type = workflow_type
        self._activities = activities
        self._cpu_activities = cpu_activities
        self._llm_activities = llm_activities
        if isinstance(llm_steps, str):
            raise TypeError(f"llm_steps of {name!r} must be a sequence of step names, not the string {llm_steps!r}")
        self.llm_steps = tuple(llm_steps)
        """The steps (step names or activity types) that call the model through the LLM gateway."""
        self._helper_workflows = tuple(helper_workflows)
        self.plugins: tuple[PluginRef, ...] = tuple(plugins)
        self.signals = tuple(signals)
        self.approval = approval
        self.refusal = refusal
        missing = () if approval is None else tuple(u for u in ("approve", "reject") if u not in updates)
        self.updates = (*updates, *missing)
        self.samples = tuple(samples)
        self.samples_dir = Path(samples_dir) if samples_dir is not None else None
        self.path_field = path_field
        self.path_is_folder = path_is_folder
        self.rerun_field = rerun_field
        self.demo = tuple(demo)
        self.demo_after = tuple(demo_after)
        self.folder_family = folder_family
        self.extra = extra
        self.requires = tuple(requires)
        self.distribution: str | None = None
        """The distribution that registered it (set by the registry)."""

    def __repr__(self) -> str:
        return f"Family({self.name!r}, workflow_type={self.workflow_type!r})"

    @functools.cached_property
    def workflow(self) -> type:
        """The workflow class (imported on first use)."""
        return resolve(self._workflow)

    @functools.cached_property
    def input_model(self) -> type[InputT]:
        """The input model (imported on first use)."""
        return resolve(self._input_model)

    @functools.cached_property
    def helper_workflows(self) -> tuple[type, ...]:
        return tuple(resolve(w) for w in self._helper_workflows)

    @property
    def workflow_type(self) -> str:
        """The Temporal workflow type name (known without importing a workflow named by string)."""
        if self._workflow_type:
            return self._workflow_type
        if isinstance(self._workflow, str):
            return self._workflow.rpartition(":")[2].rpartition(".")[2]
        from temporalio import workflow

        return workflow._Definition.must_from_class(self._workflow).name or self._workflow.__name__

    @property
    def id_reuse_policy(self) -> WorkflowIDReusePolicy:
        from temporalio.common import WorkflowIDReusePolicy

        policy = self._id_reuse_policy
        return WorkflowIDReusePolicy[policy] if isinstance(policy, str) else policy

    @property
    def accepts(self) -> tuple[str, ...]:
        """Every signal and update a run accepts besides cancellation."""
        return (*self.signals, *self.updates)

    def workflow_id(self, arg: InputT) -> str:
        """The workflow id a run of ``arg`` gets."""
        if self._workflow_id is None:
            return f"{self.name}-{uuid.uuid4().hex[:12]}"
        return self._workflow_id(arg)

    def conflict_message(self, arg: InputT) -> str:
        """What a start refused under :attr:`id_reuse_policy` tells the user."""
        if self._conflict_message is not None:
            return self._conflict_message(arg)
        workflow_id = self.workflow_id(arg)
        return f"{self.name} run {workflow_id} already exists (see `saga status {workflow_id}`)"

    def activities(self, resources: WorkerResources) -> list[Callable[..., Any]]:
        """The activities of the worker's main task queue, built from ``resources``."""
        return _built(self._activities, resources)

    def llm_activities(self, resources: WorkerResources) -> list[Callable[..., Any]]:
        """The activities of the rate-limited LLM task queue, built from ``resources``."""
        return _built(self._llm_activities, resources)

    def cpu_activities(self) -> list[Callable[..., Any]]:
        """The CPU-bound activities of the process-pool task queue."""
        # resolve() types a reference as object; the declaration's type says what it names.
        declared = cast(
            "Sequence[Callable[..., Any]] | Callable[[], Sequence[Callable[..., Any]]]", resolve(self._cpu_activities)
        )
        return list(declared if isinstance(declared, Sequence) else declared())

    def missing_modules(self) -> list[str]:
        """The :attr:`requires` modules that are not installed (found without importing them)."""
        return [module for module in self.requires if not _installed(module)]

    def install_command(self) -> str:
        """The ``pip install`` that adds what this family requires."""
        dist = self.distribution or "sagaworks"
        return f"pip install '{dist}[{self.extra}]'" if self.extra else f"pip install {' '.join(self.requires)}"

    def parse(self, data: bytes | str | dict[str, Any]) -> InputT:
        """Validate raw input (JSON text or a mapping); raises ``pydantic.ValidationError``."""
        from pydantic import ValidationError

        # Always through JSON, as the workflow receives it: strict models accept JSON forms
        # (dates, enums, tuples) from JSON text that they refuse from Python objects.
        text = json.dumps(data) if isinstance(data, dict) else data
        parsed = self.input_model.model_validate_json(text)
        if getattr(parsed, "resume", None) is not None:
            # A resume point hands a run stage outcomes it will not check: only runs
            # restarted before the step runner's restart carry one (read from a real run).
            raise ValidationError.from_exception_data(
                self.input_model.__name__,
                [
                    {
                        "type": "value_error",
                        "loc": ("resume",),
                        "input": "...",
                        "ctx": {
                            "error": ValueError(
                                "is carried only by runs restarted before the step runner, never set by callers: "
                                "restart a run with `saga restart ID --from STEP`"
                            )
                        },
                    }
                ],
            )
        return parsed

    def check_allowed(self, arg: InputT) -> None:
        """Raise :class:`RunRefused` if the configuration refuses ``arg`` (:attr:`refusal`)."""
        if self.refusal is not None and (why := self.refusal(arg)):
            raise RunRefused(why)

    def sample_paths(self) -> list[Path]:
        """The sample input files, as absolute paths."""
        return [self._sample_path(sample) for sample in self.samples]

    def _sample_path(self, sample: str) -> Path:
        return (self.samples_dir or Path.cwd()) / sample

    def sample_data(self, sample: str, rerun_suffix: str | None = None) -> dict[str, Any]:
        """A sample input as JSON data (relative to :attr:`samples_dir`), its
        :attr:`rerun_field` suffixed so that it can run again."""
        data: dict[str, Any] = json.loads(self._sample_path(sample).read_bytes())
        if rerun_suffix and self.rerun_field and self.rerun_field in data:
            data[self.rerun_field] = f"{data[self.rerun_field]}-{rerun_suffix}"
        return data

    def sample_input(self, sample: str, rerun_suffix: str | None = None) -> InputT:
        """A sample input, validated (see :meth:`sample_data`)."""
        return self.parse(self.sample_data(sample, rerun_suffix))

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of the input model."""
        return self.input_model.model_json_schema()


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported. ``find_spec`` raises, rather than answering None,
    for a submodule of a missing package and under import hooks that refuse a module."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _built(activities: Activities, resources: WorkerResources) -> list[Callable[..., Any]]:
    # resolve() types a reference as object; the declaration's type says what it names.
    declared = cast(
        "Sequence[Callable[..., Any]] | Callable[[WorkerResources], Sequence[Callable[..., Any]]]", resolve(activities)
    )
    if isinstance(declared, Sequence):
        return list(declared)
    return list(declared(resources))


@dataclass(frozen=True)
class Unavailable:
    """A registered family that cannot run here: a module it requires is missing."""

    name: str
    missing: str
    """The missing module(s)."""
    install: str
    """The command that adds them (``pip install 'sagaworks[plans]'``), empty if unknown."""


@dataclass(frozen=True)
class Broken:
    """An entry point that did not give a family: it is skipped, the others still load."""

    entry: str
    """``name = value`` as registered, with its distribution."""
    error: str


@dataclass(frozen=True)
class Registry:
    """The families found through the ``sagaworks.families`` entry points."""

    families: tuple[Family[Any], ...]
    """The families that can run, in registration order (the built-in ones first)."""
    unavailable: tuple[Unavailable, ...] = ()
    broken: tuple[Broken, ...] = ()
    _by_name: dict[str, Family[Any]] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update((f.name, f) for f in self.families)

    def __iter__(self) -> Iterator[Family[Any]]:
        return iter(self.families)

    def __len__(self) -> int:
        return len(self.families)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.families]

    def family(self, name: str) -> Family[Any]:
        """The family called ``name``; raises ``KeyError`` saying why it is not here."""
        if name in self._by_name:
            return self._by_name[name]
        for missing in self.unavailable:
            if missing.name == name:
                raise KeyError(
                    f"family {name!r} is unavailable here: {missing.missing} is not installed ({missing.install})"
                )
        raise KeyError(f"no family {name!r}; the catalog has: {', '.join(self.names)}")

    def family_of_type(self, workflow_type: str) -> Family[Any] | None:
        """The family whose workflow type is ``workflow_type`` (None for helper workflows)."""
        return next((f for f in self.families if f.workflow_type == workflow_type), None)

    def demo_order(self) -> list[Family[Any]]:
        """The families with demos, each after those its ``demo_after`` names (when registered)."""
        ordered: list[Family[Any]] = []

        def place(fam: Family[Any], path: tuple[str, ...]) -> None:
            if fam in ordered or fam.name in path:  # placed already, or a cycle: keep registration order
                return
            for name in fam.demo_after:
                if name in self._by_name:
                    place(self._by_name[name], (*path, fam.name))
            ordered.append(fam)

        for fam in self.families:
            place(fam, ())
        return [fam for fam in ordered if fam.demo]

    def workflows(self) -> list[type]:
        """Every workflow class the worker serves and the replayer knows, each type once."""
        return _unique(
            (w for f in self.families for w in (f.workflow, *f.helper_workflows)),
            key=_workflow_name,
        )


def _workflow_name(cls: type) -> str:
    from temporalio import workflow

    return workflow._Definition.must_from_class(cls).name or cls.__name__


def _unique(items: Iterable[T], key: Callable[[T], Any]) -> list[T]:
    seen: set[Any] = set()
    kept = []
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            kept.append(item)
    return kept


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    found = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    # The engine's own families first, then each distribution's in its registration order.
    return sorted(found, key=lambda ep: ep.dist is None or ep.dist.name != "sagaworks")


def _describe(ep: importlib.metadata.EntryPoint) -> str:
    dist = f" (from {ep.dist.name})" if ep.dist is not None else ""
    return f"{ep.name} = {ep.value}{dist}"


def _missing_dependency(ep: importlib.metadata.EntryPoint, error: ImportError) -> str | None:
    """The third-party module an entry point's import lacks; None if the plugin itself is broken."""
    missing = (getattr(error, "name", None) or "").partition(".")[0]
    own = ep.module.partition(".")[0]
    return missing if missing and missing != own and importlib.util.find_spec(missing) is None else None


def _load(ep: importlib.metadata.EntryPoint) -> Family[Any]:
    loaded = ep.load()
    if not isinstance(loaded, Family) and callable(loaded):
        loaded = loaded()
    if not isinstance(loaded, Family):
        raise TypeError(f"gave a {type(loaded).__name__}, not a sagaworks.Family (or a function returning one)")
    if loaded.name != ep.name:
        raise ValueError(f"registered as {ep.name!r} but the family is named {loaded.name!r}")
    return loaded


def discover(entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> Registry:
    """Load every family registered under ``sagaworks.families``.

    A broken entry point (an import error of its own, not a family, a name taken) is
    skipped and listed in :attr:`Registry.broken`, a family whose required modules are
    missing in :attr:`Registry.unavailable`: ``saga catalog`` and the worker report both.
    """
    families: list[Family[Any]] = []
    unavailable: list[Unavailable] = []
    broken: list[Broken] = []
    taken: dict[str, str] = {}
    for ep in _entry_points() if entry_points is None else entry_points:
        dist = ep.dist.name if ep.dist is not None else None
        try:
            fam = _load(ep)
        except ImportError as error:
            module = _missing_dependency(ep, error)
            if module is None:
                broken.append(Broken(_describe(ep), f"{type(error).__name__}: {error}"))
                continue
            install = f"pip install '{dist}[{','.join(ep.extras)}]'" if dist and ep.extras else ""
            unavailable.append(Unavailable(ep.name, module, install))
            continue
        except Exception as error:  # a plugin's bug must not take the other families down
            broken.append(Broken(_describe(ep), f"{type(error).__name__}: {error}"))
            continue
        if fam.name in taken:
            broken.append(Broken(_describe(ep), f"the name {fam.name!r} is already registered by {taken[fam.name]}"))
            continue
        taken[fam.name] = dist or "an unnamed distribution"
        fam.distribution = fam.distribution or dist
        if missing := fam.missing_modules():
            unavailable.append(Unavailable(fam.name, ", ".join(missing), fam.install_command()))
            continue
        families.append(fam)
    return Registry(tuple(families), tuple(unavailable), tuple(broken))


@functools.cache
def registry() -> Registry:
    """The registered families, discovered once per process (see :func:`discover`)."""
    return discover()
