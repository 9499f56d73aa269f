// Live refresh for console dashboards: re-fetch the page every few seconds and swap the
// #live block, leaving the forms (and anything being typed) alone. Without JavaScript
// the page refreshes itself every 30 seconds instead.
(function () {
  var live = document.getElementById("live");
  if (!live) return;
  var every = (parseInt(live.dataset.refresh, 10) || 5) * 1000;
  function tick() {
    fetch(location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (next) live.innerHTML = next.innerHTML;
      })
      .catch(function () { /* keep the last view; try again next tick */ })
      .finally(function () { setTimeout(tick, every); });
  }
  setTimeout(tick, every);
})();
