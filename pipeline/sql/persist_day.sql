-- Replace $run_date's rows of the warehouse tables with this run's. The runner executes
-- this in one transaction with the monthly refresh: a reader sees the old day or the new
-- day, never a mix, and re-running a date gives the same rows again.
DELETE FROM sessions WHERE session_date = $run_date::DATE;
INSERT INTO sessions BY NAME SELECT * FROM sessions_this_run;

DELETE FROM session_identity WHERE session_date = $run_date::DATE;
INSERT INTO session_identity BY NAME SELECT * FROM session_identity_this_run;

DELETE FROM daily_sessions WHERE date = $run_date::DATE;
INSERT INTO daily_sessions BY NAME SELECT * FROM daily_sessions_this_run;

DELETE FROM daily_cost_per_session WHERE date = $run_date::DATE;
INSERT INTO daily_cost_per_session BY NAME SELECT * FROM daily_cost_per_session_this_run;

DELETE FROM daily_site_summary WHERE date = $run_date::DATE;
INSERT INTO daily_site_summary BY NAME SELECT * FROM daily_site_summary_this_run;
