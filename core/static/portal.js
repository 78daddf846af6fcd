// The client portal as an installable web app: service worker, and push on request.
(function () {
  "use strict";
  var script = document.getElementById("portal-script");
  if (!script || !("serviceWorker" in navigator)) { return; }
  var csrf = document.querySelector("meta[name='csrf-token']");

  function urlBase64ToUint8Array(text) {
    var padding = "=".repeat((4 - (text.length % 4)) % 4);
    var raw = window.atob((text + padding).replace(/-/g, "+").replace(/_/g, "/"));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes;
  }

  function send(subscription) {
    return fetch(script.getAttribute("data-subscribe"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.content : "" },
      body: JSON.stringify(subscription.toJSON())
    });
  }

  function show(id) {
    var element = document.getElementById(id);
    if (element) { element.classList.remove("d-none"); }
  }

  navigator.serviceWorker.register(script.getAttribute("data-sw"), { scope: script.getAttribute("data-scope") })
    .then(function (registration) {
      if (!("PushManager" in window) || !("Notification" in window)) { return; }
      show("push-card");
      registration.pushManager.getSubscription().then(function (existing) {
        if (existing) {
          // Tell the server again: the browser may have renewed the subscription.
          send(existing);
          show("push-on");
          return;
        }
        if (Notification.permission === "denied") { show("push-denied"); }
      });
      var button = document.getElementById("push-enable");
      if (!button) { return; }
      button.addEventListener("click", function () {
        Notification.requestPermission().then(function (permission) {
          if (permission !== "granted") { show("push-denied"); return; }
          fetch(script.getAttribute("data-key"), { credentials: "same-origin" })
            .then(function (response) { return response.json(); })
            .then(function (data) {
              return registration.pushManager.subscribe({
                userVisibleOnly: true,
                applicationServerKey: urlBase64ToUint8Array(data.publicKey)
              });
            })
            .then(send)
            .then(function () { show("push-on"); });
        });
      });
    });
})();
