// The code page, live: delivery status refreshes by itself and the resend button counts
// down. Without JavaScript the page still works (a meta refresh while mail is on its way).
(function () {
  "use strict";
  var card = document.getElementById("otp");
  if (!card) return;
  var statusEl = document.getElementById("otp-status");
  var sendBtn = document.getElementById("otp-send");
  var countdown = document.getElementById("otp-countdown");
  var settled = { sent: true, failed: true, none: true };

  function tick(seconds) {
    if (!countdown || !sendBtn) return;
    if (seconds > 0) {
      sendBtn.disabled = true;
      countdown.textContent = "You can ask again in " + seconds + " s.";
      setTimeout(function () { tick(seconds - 1); }, 1000);
    } else {
      sendBtn.disabled = false;
      countdown.textContent = "";
    }
  }

  function poll() {
    fetch(card.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) {
        if (!s) return;
        if (statusEl && s.message) {
          statusEl.textContent = s.message;
          statusEl.hidden = false;
          statusEl.classList.toggle("failed", s.state === "failed");
        }
        if (!settled[s.state]) setTimeout(poll, 3000);
      })
      .catch(function () { setTimeout(poll, 5000); });
  }

  if (countdown) tick(parseInt(countdown.dataset.seconds || "0", 10));
  if (!settled[card.dataset.state]) setTimeout(poll, 2000);
})();
