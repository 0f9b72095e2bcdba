"""The AMI user's classes: the production snippet and the sandbox grant the
same, so the integration tests run recguard with exactly what an
installation gives it, and both grant no more than recguard uses."""

from __future__ import annotations

from asterisk_recguard import resources

from .test_sandbox_helpers import conf_sections



def classes(path: str, user: str) -> dict[str, set[str]]:
    section = conf_sections(resources.config_dir() / path)[user]
    return {key: {c.strip() for c in section[key].split(",")} for key in ("read", "write")}


def test_production_and_sandbox_grant_the_recguard_user_the_same_classes() -> None:
    production = classes("asterisk/manager.conf", "recguard")
    sandbox = classes("sandbox/manager.conf", "${ami_user}")
    assert production == sandbox


def test_the_classes_are_those_recguard_uses() -> None:
    # read: MixMonitorStart is a CALL event. write: Setvar, Getvar and
    # StopMixMonitor are call; MixMonitor, DBGet, DBDel and Filter are system.
    assert classes("asterisk/manager.conf", "recguard") == {"read": {"call"},
                                                             "write": {"call", "system"}}
