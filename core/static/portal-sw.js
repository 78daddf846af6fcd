// Service worker of the client portal: shows push notifications and opens what they point at.
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (error) { data = { title: event.data.text() }; }
  event.waitUntil(self.registration.showNotification(data.title || "", {
    body: data.body || "",
    tag: data.tag || undefined,
    data: { url: data.url || self.registration.scope }
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || self.registration.scope;
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
    for (var i = 0; i < windows.length; i++) {
      if (windows[i].url === url && "focus" in windows[i]) { return windows[i].focus(); }
    }
    return self.clients.openWindow(url);
  }));
});

// The browser renewed (or dropped) the subscription while no portal page was open: subscribe
// again and tell the server which endpoint the new one replaces. The URLs sit beside this file.
self.addEventListener("pushsubscriptionchange", function (event) {
  function bytes(text) {
    var raw = atob((text + "=".repeat((4 - (text.length % 4)) % 4)).replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(raw, function (c) { return c.charCodeAt(0); });
  }
  var old = event.oldSubscription;
  event.waitUntil(fetch(new URL("push/key", self.location), { credentials: "same-origin" })
    .then(function (response) { return response.json(); })
    .then(function (key) {
      var renewed = event.newSubscription ? Promise.resolve(event.newSubscription) :
        self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(key.publicKey) });
      return renewed.then(function (subscription) {
        var body = subscription.toJSON();
        if (old && old.endpoint !== subscription.endpoint) { body.replaces = old.endpoint; }
        return fetch(new URL("push/subscriptions", self.location), {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": key.csrfToken },
          body: JSON.stringify(body)
        });
      });
    }));
});
