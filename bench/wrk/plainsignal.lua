-- wrk script: one PlainSignal-style page view per request, from varied addresses.
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain"
wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
wrk.body = '{"name":"page_view","url":"https://shop.example/products/42?utm_source=google&utm_medium=cpc&gclid=abc","referrer":"https://www.google.com/"}'
request = function()
  -- a different visitor address per request, as real traffic has
  wrk.headers["X-Forwarded-For"] = "10." .. math.random(0, 255) .. "." .. math.random(0, 255) .. "." .. math.random(1, 254)
  return wrk.format()
end
