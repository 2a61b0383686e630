"""75a citime: `make test`'s `--dist loadfile` starts the files of tens of seconds first
(tests/support/schedule.py): xdist's own order (the most tests first) started test_readme.py
(one ~47 s test in 7) and test_reconnect_daemon.py (~44 s in 2) among the last files."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from tests.support.schedule import LONG_FILES, LongFilesFirst, long_files_first


@dataclass(eq=False)
class _Worker:
    """What the scheduler asks of an xdist worker: the indexes of the tests sent to it."""

    name: str
    sent: list[int] = field(default_factory=list)
    shutting_down: bool = False

    @property
    def gateway(self) -> Any:
        return SimpleNamespace(id=self.name)

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent += indexes

    def send_runtest_all(self) -> None:
        raise AssertionError("loadfile sends files, not all")

    def shutdown(self) -> None:
        self.shutting_down = True


class _Config:
    option = SimpleNamespace(loadscopereorder=True)

    def getvalue(self, name: str) -> Any:
        return {"tx": ["2*popen"]}[name]


def test_the_long_files_go_first_in_their_order_the_rest_keep_theirs() -> None:
    queue: dict[str, dict[str, bool]] = {"tests/test_many.py": {}, LONG_FILES[1]: {}}
    queue["tests/test_few.py"] = {}
    queue[LONG_FILES[0]] = {}
    long_files_first(queue)
    assert list(queue) == [*LONG_FILES[:2], "tests/test_many.py", "tests/test_few.py"]


def test_a_long_file_of_few_tests_is_handed_out_first_and_whole() -> None:
    """Without the hook xdist hands out test_many.py (3 tests) first and the long file (1 test)
    last; with it the long file goes first, each file still whole to one worker."""
    collection = [
        "tests/test_few.py::test_a",
        f"{LONG_FILES[0]}::test_long",
        "tests/test_many.py::test_a",
        "tests/test_many.py::test_b",
        "tests/test_many.py::test_c",
    ]
    scheduler = LongFilesFirst(_Config())
    workers = [_Worker("gw0"), _Worker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    first, second = ([collection[i] for i in worker.sent] for worker in workers)
    assert first[0] == f"{LONG_FILES[0]}::test_long"
    files = [{nodeid.split("::")[0] for nodeid in sent} for sent in (first, second)]
    assert not files[0] & files[1]  # no file split between the workers
