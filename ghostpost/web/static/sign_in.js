// The sign-in form sends the browser's time zone: a user who has not chosen one yet reads
// times in it from then on (the server keeps it only if it is a known IANA zone).
(function () {
  "use strict";
  var field = document.getElementById("browser-time-zone");
  if (!field || !window.Intl || !Intl.DateTimeFormat) {
    return;
  }
  try {
    field.value = Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (e) {
    field.value = "";
  }
})();
