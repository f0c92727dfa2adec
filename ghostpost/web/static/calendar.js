// The calendar's drag to reschedule (templates/calendar.html). A post marked draggable is
// dropped on a day (month: it keeps its time of day) or an hour slot (week: it keeps its
// minutes); the move is posted as the post page's Reschedule form would post it, with the CSRF
// token, and the server's answer (done, or why not) shows in #cal-status. Without this script
// the post page's form does the same.
(function () {
  "use strict";
  var status = document.getElementById("cal-status");
  var form = document.getElementById("cal-move");
  if (!status || !form) return;
  var dragged = null;

  function say(message, ok) {
    status.textContent = message;
    status.className = "flash " + (ok ? "ok" : "error");
    status.hidden = false;
  }

  function targetOf(node) {
    return node && node.closest ? node.closest("[data-drop-day]") : null;
  }

  function clearTargets() {
    document.querySelectorAll(".drop-target").forEach(function (el) {
      el.classList.remove("drop-target");
    });
  }

  document.querySelectorAll(".cal-post[draggable=true]").forEach(function (item) {
    item.addEventListener("dragstart", function (event) {
      dragged = item;
      item.classList.add("dragging");
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", item.getAttribute("data-live-post") || "");
    });
    item.addEventListener("dragend", function () {
      item.classList.remove("dragging");
      clearTargets();
      dragged = null;
    });
  });

  document.querySelectorAll("[data-drop-day]").forEach(function (target) {
    target.addEventListener("dragover", function (event) {
      if (!dragged) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      clearTargets();
      target.classList.add("drop-target");
    });
    target.addEventListener("dragleave", function (event) {
      if (targetOf(event.relatedTarget) !== target) target.classList.remove("drop-target");
    });
    target.addEventListener("drop", function (event) {
      event.preventDefault();
      clearTargets();
      if (dragged) move(dragged, target);
    });
  });

  function move(item, target) {
    var time = item.getAttribute("data-time") || "09:00";
    var hour = target.getAttribute("data-drop-hour");
    if (hour) time = hour + ":" + time.split(":")[1];
    var when = target.getAttribute("data-drop-day") + "T" + time;
    var body = new FormData(form);
    body.set("publish_at", when);
    say("Moving the post to " + when.replace("T", " ") + "…", true);
    fetch(item.getAttribute("data-move-url"), {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        return response.json().then(function (answer) {
          return { ok: response.ok, answer: answer };
        });
      })
      .then(function (result) {
        var answer = result.answer;
        if (!result.ok) {
          say(answer.message || answer.detail || "The post was not moved.", false);
          return;
        }
        placeAt(item, target, answer);
        say(answer.message, true);
      })
      .catch(function () {
        say("The post was not moved: the server did not answer. Try again.", false);
      });
  }

  function placeAt(item, target, answer) {
    var list = target.querySelector(".cal-posts");
    if (!list) {
      list = document.createElement("ul");
      list.className = "cal-posts";
      target.appendChild(list);
    }
    list.appendChild(item);
    target.classList.remove("empty", "quiet");
    item.setAttribute("data-time", answer.time);
    var shown = item.querySelector("time");
    if (shown) {
      shown.setAttribute("datetime", answer.publish_at);
      shown.setAttribute("title", answer.utc);
      shown.textContent = answer.local;
    }
    var state = item.querySelector("[data-live-state]");
    if (state) {
      state.textContent = answer.state_label;
      state.className = "badge " + answer.state;
    }
    item.className = item.className.replace(/state-[a-z_]+/, "state-" + answer.state);
  }
})();
