"""Work on resources as CloudFormation does: each one once what it depends on is done, independent ones at once.

"CloudFormation creates, updates, and deletes resources in parallel to the extent possible" (template
reference, DependsOn attribute): a resource waits only for what it references or names in DependsOn, and is
deleted only after what references it. A wait condition or a slow custom resource holds up only what depends
on it. After the first failure nothing new starts, and what is under way finishes, before the rollback.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from appstream_image_local.cfn.model import ResourceFailed


def in_parallel(
    names: Iterable[str],
    after: Callable[[str], set[str]],
    action: Callable[[str], None],
    on_failure: Callable[[], None] = lambda: None,
) -> tuple[list[str], BaseException | None]:
    """Run `action(name)` for each name once every name in `after(name)` (among `names`) is done.

    `on_failure` runs once, at the first failure (CloudFormation then cancels what is in progress).
    Returns the names done, in the order they finished, and the first failure (a ResourceFailed, or
    anything else an action raised); the caller decides what a failure means.
    """
    todo = list(names)
    wanted = set(todo)
    needs = {name: after(name) & wanted for name in todo}
    done: list[str] = []
    running: set[str] = set()
    failures: list[BaseException] = []
    changed = threading.Condition()

    def work(name: str) -> None:
        try:
            action(name)
        except BaseException as err:  # handed to the caller, which re-raises what it must
            with changed:
                failures.append(err)
                first = len(failures) == 1
            if first:
                on_failure()
        else:
            with changed:
                done.append(name)
        finally:
            with changed:
                running.discard(name)
                changed.notify_all()

    with changed:
        while True:
            if not failures:
                for name in [n for n in todo if needs[n] <= set(done)]:
                    todo.remove(name)
                    running.add(name)
                    threading.Thread(target=work, args=(name,), name=f"cfn-{name}", daemon=True).start()
            if not running:
                break
            changed.wait()
    return done, failures[0] if failures else None


def first_resource_failure(failure: BaseException | None) -> ResourceFailed | None:
    """The failure as the engine handles it: a ResourceFailed; anything else is a bug, raised as it is."""
    if failure is None or isinstance(failure, ResourceFailed):
        return failure
    raise failure
