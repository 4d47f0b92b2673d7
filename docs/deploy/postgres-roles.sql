-- A read-only PostgreSQL role for the wattledger dashboard: SELECT on the rollups and marts it
-- reads, nothing else (not the raw requests, not the API key hashes). Run as the owner of the
-- wattledger tables, after `wattledger db upgrade`:
--
--   psql "$OWNER_URL" -v dashboard_role=wattledger_dashboard -v database=wattledger \
--        -f docs/deploy/postgres-roles.sql
--   psql "$OWNER_URL" -c '\password wattledger_dashboard'
--
-- Then give the dashboard postgresql+psycopg://wattledger_dashboard:...@host/wattledger
-- (dashboard.yaml reads it from the Secret wattledger-db-readonly). The dashboard also opens
-- its sessions read-only. tests/pipeline/test_full_flow.py runs this file and reads the
-- dashboard's data through the role. Re-run it after an upgrade that adds a mart table.
CREATE ROLE :"dashboard_role" LOGIN;
GRANT CONNECT ON DATABASE :"database" TO :"dashboard_role";
GRANT USAGE ON SCHEMA public TO :"dashboard_role";
GRANT SELECT ON rollup_hourly, rollup_daily, device_energy_hourly, recommendations, report_runs,
    devices, prices, watermarks, quarantine_hourly TO :"dashboard_role";
