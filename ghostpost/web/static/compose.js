// Compose: keep the counter and the preview live while the writer types.
// The server decides (POST /compose/preview); this script only asks and shows the answer.
// Without it the form still works: "Preview" re-renders the page with the same answer.
(function () {
  "use strict";

  var DELAY_MS = 250;
  var form = document.getElementById("compose-form");
  if (!form || !window.fetch) {
    return;
  }
  var token = form.querySelector('input[name="csrf_token"]').value;
  var url = form.getAttribute("data-preview-url");
  var el = function (id) { return document.getElementById(id); };
  var fields = {
    account: el("account"),
    text: el("text"),
    publishAt: el("publish_at"),
    timezone: el("timezone")
  };
  var timer = null;
  var latest = 0;

  // Offer the browser's own time zone the first time the page opens (the select stays explicit).
  if (fields.timezone.getAttribute("data-auto") === "1" && window.Intl) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    var known = Array.prototype.some.call(fields.timezone.options, function (option) {
      return option.value === zone;
    });
    if (zone && known) {
      fields.timezone.value = zone;
    }
  }

  // The submit button says what it does: publish now (no time) or schedule.
  var submitButton = el("submit-button");
  function labelSubmit() {
    if (submitButton) {
      submitButton.textContent = submitButton.getAttribute(
        fields.publishAt.value ? "data-later" : "data-now"
      );
    }
  }
  fields.publishAt.addEventListener("input", labelSubmit);
  fields.publishAt.addEventListener("change", labelSubmit);

  function show(node, visible) {
    node.hidden = !visible;
  }

  function render(data) {
    var counter = el("counter");
    counter.textContent = data.counter.text;
    counter.classList.toggle("over", Boolean(data.counter.over));

    var refusal = el("preview-refusal");
    refusal.textContent = data.refusal || "";
    show(refusal, Boolean(data.refusal));

    var text = el("preview-text");
    text.textContent = data.text_if_published_now;
    show(text, Boolean(data.text_if_published_now));
    show(el("preview-empty"), !data.text_if_published_now && !data.refusal);

    var list = el("preview-decisions");
    while (list.firstChild) {
      list.removeChild(list.firstChild);
    }
    data.items.forEach(function (item) {
      var row = document.createElement("div");
      row.className = "tone-" + item.tone;
      var term = document.createElement("dt");
      term.textContent = item.label;
      var value = document.createElement("dd");
      value.textContent = item.text;
      row.appendChild(term);
      row.appendChild(value);
      list.appendChild(row);
    });
    el("preview-notes").textContent = data.notes.join(" ");

    // Over the limit or refused: no submitting (the server refuses it anyway).
    if (submitButton) {
      submitButton.disabled = Boolean(data.counter.over || data.refusal);
    }
    // A delegated post that would go out without the tag needs the writer's explicit yes.
    var untagged = el("untagged-ok");
    // The live preview is the first account's; a server-rendered group preview decided the box
    // for every account, so only a yes is added here, never taken away.
    if (untagged && (data.untagged || !el("group-preview"))) {
      if (data.untagged) {
        el("untagged-tag").textContent = data.untagged;
      } else {
        el("untagged_ok").checked = false;
      }
      show(untagged, Boolean(data.untagged));
    }
  }

  function problem(message) {
    var refusal = el("preview-refusal");
    refusal.textContent = message;
    show(refusal, true);
    // What was shown before is no longer the text that would go out.
    show(el("preview-text"), false);
  }

  function refresh() {
    var mine = ++latest;
    var body = {
      account_id: fields.account.value,
      text: fields.text.value,
      publish_at: fields.publishAt.value,
      timezone: fields.timezone.value
    };
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-CSRFToken": token
      },
      body: JSON.stringify(body)
    })
      .then(function (response) {
        return response.json().then(function (data) {
          return { ok: response.ok, data: data };
        });
      })
      .then(function (answer) {
        if (mine !== latest) {
          return; // a newer request is on its way
        }
        if (answer.ok) {
          render(answer.data);
        } else {
          problem(answer.data.detail || "The preview is not available.");
        }
      })
      .catch(function () {
        if (mine === latest) {
          problem("The live preview is not available right now; use the Preview button.");
        }
      });
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(refresh, DELAY_MS);
  }

  fields.text.addEventListener("input", later);
  fields.publishAt.addEventListener("input", later);
  [fields.account, fields.publishAt, fields.timezone].forEach(function (field) {
    field.addEventListener("change", later);
  });
  refresh();
}());

// Images: drop image files on the Images box (or pick them) and see each one at once. A dropped
// image fills the next empty file input, so the form posts exactly what the no-script form
// posts; the server still checks and cleans every file.
(function () {
  "use strict";

  var box = document.querySelector("fieldset.images");
  if (!box || !window.DataTransfer || !window.FileReader) {
    return;
  }
  var inputs = Array.prototype.slice.call(box.querySelectorAll('input[type="file"]'));
  var hint = document.createElement("p");
  hint.className = "drop-hint";
  hint.textContent = "Drop images here, or choose them below.";
  box.insertBefore(hint, box.querySelector("legend").nextSibling);
  var status = document.createElement("p");
  status.className = "hint";
  status.setAttribute("role", "status");
  box.appendChild(status);

  function showThumbnail(input) {
    var row = input.closest(".image-row");
    var old = row.querySelector("img.thumb.chosen");
    if (old) {
      row.removeChild(old);
    }
    var file = input.files && input.files[0];
    if (!file) {
      return;
    }
    var reader = new FileReader();
    reader.onload = function () {
      var img = document.createElement("img");
      img.className = "thumb chosen";
      // Decorative here: the alt text field right below says what the image shows.
      img.alt = "";
      img.src = reader.result;
      row.insertBefore(img, input.nextSibling);
    };
    reader.readAsDataURL(file);
  }

  inputs.forEach(function (input) {
    input.addEventListener("change", function () { showThumbnail(input); });
  });

  box.addEventListener("dragover", function (event) {
    event.preventDefault();
    box.classList.add("dropping");
  });
  box.addEventListener("dragleave", function () { box.classList.remove("dropping"); });
  box.addEventListener("drop", function (event) {
    event.preventDefault();
    box.classList.remove("dropping");
    var files = Array.prototype.filter.call(event.dataTransfer.files, function (file) {
      return /^image\//.test(file.type);
    });
    var empty = inputs.filter(function (input) { return !input.files || !input.files.length; });
    var placed = 0;
    files.forEach(function (file, index) {
      var input = empty[index];
      if (!input) {
        return;
      }
      var one = new DataTransfer();
      one.items.add(file);
      input.files = one.files;
      showThumbnail(input);
      placed += 1;
      if (placed === 1) {
        var alt = document.getElementById(input.id + "_alt");
        if (alt) {
          alt.focus();
        }
      }
    });
    var left = files.length - placed;
    status.textContent = placed + (placed === 1 ? " image added" : " images added") +
      (left > 0 ? "; " + left + " did not fit (" + inputs.length + " at most)" : "") +
      ". Describe each one in its alt text field.";
  });
})();
