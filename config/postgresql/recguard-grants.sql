-- What recguard_guard may do in the ledger's database. Run in that database
-- after `recguard ledger init` (or `recguard ledger copy`), as recguard_owner,
-- and again after an upgrade that adds a table or a column:
--     psql -U recguard_owner -d recguard -f recguard-grants.sql
--
-- The append-only tables (decisions, access_log, unauthorized) get SELECT and
-- INSERT only; calls and recordings UPDATE only on the columns their
-- lifecycle changes; DELETE and TRUNCATE on nothing. The triggers refuse an
-- UPDATE or DELETE of history even by the owner; these grants keep the guard
-- from trying, and from lifting a trigger (only the owner can).

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC;
DO $$ BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO recguard_guard', current_database());
END $$;
GRANT USAGE ON SCHEMA public TO recguard_guard;

GRANT SELECT ON ledger_schema TO recguard_guard;
GRANT SELECT, INSERT ON calls, decisions, recordings, purpose_history, access_log, unauthorized,
    recording_pauses TO recguard_guard;
GRANT USAGE ON SEQUENCE purpose_history_id_seq, recording_pauses_id_seq TO recguard_guard;

-- A call: seen again (transfer, reconcile), its facts, its end; a server id
-- given to a call written before the ledger knew servers (schema 5).
GRANT UPDATE (channel, linkedid, caller_hash, last_facts, ended_at, status, server_id) ON calls
    TO recguard_guard;
-- A recording: MixMonitor id, purposes, stop, finalization, hold, deletion;
-- its server id, as for a call.
GRANT UPDATE (mixmonitor_id, purposes, bases, status, stopped_at, finalized_at, deadline,
              size_bytes, duration_s, sha256, stored_path, key_id, deleted_at,
              deletion_reason, deleted_by, hold_reason, held_at, held_by, server_id) ON recordings
    TO recguard_guard;
-- A pause for card details: closed once, at the resume or the call's end.
GRANT UPDATE (resumed_at, resumed_by) ON recording_pauses TO recguard_guard;
