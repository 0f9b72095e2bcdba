-- The roles of a PostgreSQL ledger. Run once per PostgreSQL cluster, as a
-- superuser:   sudo -u postgres psql -f recguard-roles.sql
-- Then make the ledger's database, owned by recguard_owner:
--              sudo -u postgres createdb -O recguard_owner recguard
-- and give each role a password (\password in psql) kept in ~/.pgpass of the
-- user that runs recguard, never in RECGUARD_LEDGER.
--
-- recguard_owner  owns the tables: `recguard ledger init`, `recguard ledger
--                 copy` and schema upgrades run as it. Nothing else should.
-- recguard_guard  `recguard run` and the DPO's commands on every server: may
--                 read, append, and change only the columns a recording's
--                 and a call's lifecycle changes (recguard-grants.sql); may
--                 never update or delete the decisions, the access log or
--                 the unauthorized log, nor delete anything, nor lift a trigger.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'recguard_owner') THEN
        CREATE ROLE recguard_owner LOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'recguard_guard') THEN
        CREATE ROLE recguard_guard LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
    END IF;
END $$;
