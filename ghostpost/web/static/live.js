// Live status: posts shown on a staff page move from scheduled to publishing to published (or
// failed, with the reason) without a reload.
//
// Short polling of GET /posts/status (ghostpost/web/live.py says why not server-sent events).
// Each post is marked `data-live-post="<public id>"`, with children `[data-live-state]` (its
// state label), and optionally `[data-live-reason]` and `[data-live-link]` (where the link to the
// published post goes; its attribute value, if any, is the link's text). <body> carries the
// endpoint (data-live-url) and the interval (data-live-poll-ms).
//
// It asks only while the tab is visible, stops asking about a post once it is final, stops
// altogether when every post is or the session has ended (401), and waits longer after each
// failed request (up to 16 times the interval), so a server that is down is not hammered.
"use strict";
(function () {
  var body = document.body;
  var url = body && body.getAttribute("data-live-url");
  if (!url) return;
  var interval = parseInt(body.getAttribute("data-live-poll-ms"), 10);
  if (!(interval >= 100)) interval = 5000;
  var MAX_IDS = 100; // the endpoint's cap (MAX_STATUS_IDS)
  var STATES = ["pending_approval", "scheduled", "held", "publishing", "published", "failed",
    "cancelled", "refused"];
  var TONE = { failed: "error-text", refused: "error-text", held: "warn", pending_approval: "warn" };

  var pending = {}; // public id -> the elements showing it
  Array.prototype.forEach.call(document.querySelectorAll("[data-live-post]"), function (item) {
    var id = item.getAttribute("data-live-post");
    if (!id) return;
    (pending[id] = pending[id] || []).push(item);
  });
  if (!Object.keys(pending).length) return;

  var failures = 0;
  var timer = null;
  var busy = false;

  // The item's own child (not one of a post nested inside it).
  function part(item, selector) {
    var found = item.querySelectorAll(selector);
    for (var i = 0; i < found.length; i++) {
      if (found[i].closest("[data-live-post]") === item) return found[i];
    }
    return null;
  }

  function setStateClass(element, state, prefix) {
    STATES.forEach(function (name) { element.classList.remove(prefix + name); });
    element.classList.add(prefix + state);
  }

  function show(item, post) {
    var label = part(item, "[data-live-state]");
    if (label) {
      label.textContent = post.label;
      setStateClass(label, post.state, "");
    }
    setStateClass(item, post.state, "state-");
    item.setAttribute("data-live-current", post.state);
    var reason = part(item, "[data-live-reason]");
    if (reason) {
      reason.textContent = post.reason || "";
      reason.hidden = !post.reason;
      ["error-text", "warn"].forEach(function (tone) { reason.classList.remove(tone); });
      if (TONE[post.state]) reason.classList.add(TONE[post.state]);
    }
    var place = part(item, "[data-live-link]");
    // Only web addresses become links (never a javascript: or data: URL from anywhere).
    if (place && post.platform_url && /^https?:\/\//i.test(post.platform_url)) {
      var link = place.querySelector("a");
      if (!link) {
        link = document.createElement("a");
        link.rel = "noopener noreferrer";
        (place.querySelector("dd") || place).appendChild(link);
      }
      link.href = post.platform_url;
      link.textContent = place.getAttribute("data-live-link") || post.platform_url;
      place.hidden = false;
    }
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = null;
    if (!Object.keys(pending).length || document.visibilityState !== "visible") return;
    timer = setTimeout(poll, delay);
  }

  function backoff() {
    failures = Math.min(failures + 1, 4);
    schedule(interval * Math.pow(2, failures));
  }

  function poll() {
    timer = null;
    if (busy || document.visibilityState !== "visible") return;
    var ids = Object.keys(pending).slice(0, MAX_IDS);
    if (!ids.length) return;
    var query = ids.map(function (id) { return "id=" + encodeURIComponent(id); }).join("&");
    busy = true;
    fetch(url + "?" + query, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      redirect: "error",
      cache: "no-store",
    })
      .then(function (response) {
        if (response.status === 401) {
          // Signed out (idle timeout, elsewhere): asking again cannot help; the next page
          // the person opens sends them to sign in.
          pending = {};
          throw new Error("signed out");
        }
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (answer) {
        busy = false;
        failures = 0;
        var answered = {};
        (answer.posts || []).forEach(function (post) {
          var items = pending[post.id];
          if (!items) return;
          answered[post.id] = true;
          items.forEach(function (item) { show(item, post); });
          if (post.final) delete pending[post.id];
        });
        // A post left out is one this reader can no longer see: stop asking about it.
        ids.forEach(function (id) { if (!answered[id]) delete pending[id]; });
        schedule(interval);
      })
      .catch(function () {
        busy = false;
        backoff();
      });
  }

  document.addEventListener("visibilitychange", function () {
    // Back on the tab: ask at once (things may have moved while it was hidden); hidden:
    // schedule() clears the timer and sets none.
    schedule(0);
  });
  schedule(interval);
})();
