"""Who acts: the OS user, and the user behind sudo beside it, never instead."""

from __future__ import annotations

import os
import pwd

from asterisk_recguard.access import current_actor


def test_actor_is_the_os_user_and_the_sudo_user_behind_it() -> None:
    me = pwd.getpwuid(os.getuid()).pw_name
    assert current_actor({}) == me
    assert current_actor({"SUDO_USER": "alice"}) == f"{me} (sudo by alice)"
    assert current_actor({"SUDO_USER": me}) == me
    assert current_actor({"SUDO_USER": "ev\nil\x1b[2J"}) == f"{me} (sudo by evil[2J)"
