/*
 * sessionflow tracker: cookie-free page views and custom events.
 *
 *   <script defer src="https://collector.example/t.js" data-site="shop.example"></script>
 *   sessionflow('event', 'sign_up');
 *   sessionflow('event', 'purchase', {value: 25.0, currency: 'USD'});
 *
 * No cookies, no localStorage, no identifiers: the collector derives a daily-rotating
 * visitor id from the request. Page views follow single-page-app navigation
 * (history.pushState / replaceState / popstate / hashchange).
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script) return;
  var site = script.getAttribute('data-site') || location.hostname.replace(/^www\./, '');
  var api = (script.getAttribute('data-api') || new URL(script.src).origin) + '/api/event';
  var lastUrl = null;

  function send(name, props) {
    var body = {name: name, url: location.href, referrer: document.referrer || null, site_id: site};
    if (props && props.value != null) body.value = Number(props.value);
    if (props && props.currency) body.currency = String(props.currency).toUpperCase();
    var payload = JSON.stringify(body);
    // text/plain keeps sendBeacon a "simple" CORS request: no preflight, no credentials.
    if (navigator.sendBeacon && navigator.sendBeacon(api, new Blob([payload], {type: 'text/plain'}))) return;
    fetch(api, {method: 'POST', body: payload, keepalive: true, credentials: 'omit',
                headers: {'Content-Type': 'text/plain'}}).catch(function () {});
  }

  function pageview() {
    if (location.href === lastUrl) return;  // replaceState with the same URL, etc.
    lastUrl = location.href;
    send('page_view');
  }

  function sessionflow(command, name, props) {
    if (command === 'event' && name) send(String(name), props);
    else if (command === 'pageview') { lastUrl = null; pageview(); }
  }

  // Calls made before this script loaded: window.sessionflow.q = [[command, ...], ...].
  var queued = (window.sessionflow && window.sessionflow.q) || [];
  window.sessionflow = sessionflow;

  ['pushState', 'replaceState'].forEach(function (method) {
    var original = history[method];
    history[method] = function () {
      var result = original.apply(this, arguments);
      pageview();
      return result;
    };
  });
  window.addEventListener('popstate', pageview);
  window.addEventListener('hashchange', pageview);

  pageview();
  for (var i = 0; i < queued.length; i++) sessionflow.apply(null, queued[i]);
})();
