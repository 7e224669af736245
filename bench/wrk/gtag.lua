-- wrk script: one gtag.js /g/collect request carrying 25 events, a body line each, from
-- varied browser addresses. Keep in step with bench/bench_collector.py (GTAG_QUERY, GTAG_BODY).
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
wrk.body = "en=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200\nen=page_view&_et=1200"
request = function()
  wrk.headers["X-Forwarded-For"] = "10." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format()
end
