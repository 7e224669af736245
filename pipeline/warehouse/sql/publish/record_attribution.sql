-- Record that $run_date's touches are unchanged by the look-back partitions as they are
-- now ($attribution), so the next plan does not compute them again.
UPDATE build_manifest SET attribution = $attribution WHERE date = $run_date::DATE;
