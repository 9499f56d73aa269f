// The ballot page's countdown. Ticks every second, and every 15 s re-reads the election
// (GET /e/{id}/ballot as JSON) so an officer's extension moves the close shown here.
// Without JavaScript the page still shows the close time, as rendered by the server.
(function () {
  var el = document.getElementById("countdown");
  if (!el) return;
  var closesAt = Date.parse(el.dataset.closesAt);
  var shown = document.getElementById("closes");
  function render() {
    var left = Math.max(0, Math.round((closesAt - Date.now()) / 1000));
    var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
    el.textContent = left === 0 ? "(closing now)" :
      "(" + (h ? h + " h " : "") + m + " min " + (h ? "" : s + " s ") + "left)";
  }
  function refresh() {
    fetch("/e/" + encodeURIComponent(el.dataset.election) + "/ballot",
          { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (e) {
        var next = Date.parse(e.closes_at);
        if (next && next !== closesAt) {
          closesAt = next;
          el.dataset.closesAt = e.closes_at;
          if (shown) { shown.textContent = e.closes_local; shown.setAttribute("datetime", e.closes_at); }
          render();
        }
      })
      .catch(function () { /* keep counting to the last known close */ });
  }
  render();
  setInterval(render, 1000);
  setInterval(refresh, 15000);
})();
