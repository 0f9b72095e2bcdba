"""The guard: turns channel events into decisions and decisions into actions.

Modules, in the order a call meets them (imports point down this list only):

    guard       the facade: wires the parts, routes each event to its call's lane
    gate        the first pass at Stasis(recguard,gate), and a re-gate after a transfer
    deadlines   the gate's deadline kept by a thread of its own, even when the lane is busy
    foreign     MixMonitors started by others: stopped and deleted (or only logged)
    reconcile   after a (re)connect or a restart: ledger vs Asterisk, interrupted work
    decision    one decision pass: decide(), act on the difference, ledger + log
    actions     start, retag, stop and delete, finalize (one deletion path: storage)
    diff        pure: decision + recording now -> start / keep / delete / none
    events      the decision log, one method per event
    lanes       the threads: lanes that own calls, workers for file work
    asterisk    the small interface to Asterisk (CallControl, MixMonitors)
    state       a call's state and its recording's parts
    testing     fakes of the Asterisk interface, for tests without Asterisk

Threads. The ARI and AMI reader threads only route: each event goes to the
lane (one of a few threads) that owns its call, and a lane is the only thread
that reads or changes the states of its calls, so a call's events keep their
order and no lock guards a call. Blocking file work (waiting for MixMonitor to
close a file, hashing, encrypting, unlinking) runs on worker threads, on a
call that has left its lane or on a part its state no longer holds, and
reconcile runs on a thread of its own that posts per-call work to the lanes;
one more thread continues a call whose gate has not begun by its deadline
(the lane and it take the gate by one token, first come first served).
No thread holds a lock while it takes another: the workers' claim set and the
reconcile lock are leaves, and the ledger's locks are taken inside the ledger
only, so there is no lock order to get wrong.
"""

from __future__ import annotations

from .asterisk import FINAL_FACTS_FAMILY, CallControl, LiveCallControl, MixMonitors
from .gate import GATE_ARG
from .guard import EVENT_TYPES, WITHDRAW_KEY, Guard
from .state import ActiveRecording, CallState, FinalFacts, parse_final_facts

__all__ = [
    "EVENT_TYPES",
    "FINAL_FACTS_FAMILY",
    "GATE_ARG",
    "WITHDRAW_KEY",
    "ActiveRecording",
    "CallControl",
    "CallState",
    "FinalFacts",
    "Guard",
    "LiveCallControl",
    "MixMonitors",
    "parse_final_facts",
]
