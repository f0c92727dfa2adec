// Below 640 px every table is shown as stacked cards (app.css): each cell shows its column's
// heading above its value. This labels the cells from the table's own column headings, so every
// table of every page gets it without per-template attributes. Without JavaScript the cards
// still stack, unlabelled; the table semantics (headings, scope) are unchanged for screen readers.
"use strict";
(function () {
  function headingsOf(table) {
    var row = table.tHead && table.tHead.rows[table.tHead.rows.length - 1];
    if (!row) return null;
    var headings = [];
    Array.prototype.forEach.call(row.cells, function (cell) {
      // A heading only screen readers get ("Actions" over the buttons) labels no card either.
      var visible = cell.cloneNode(true);
      Array.prototype.forEach.call(visible.querySelectorAll(".sr-only"), function (hidden) {
        hidden.remove();
      });
      for (var i = 0; i < (cell.colSpan || 1); i++) headings.push(visible.textContent.trim());
    });
    return headings;
  }
  Array.prototype.forEach.call(document.querySelectorAll("table"), function (table) {
    var headings = headingsOf(table);
    if (!headings) return;
    Array.prototype.forEach.call(table.tBodies, function (body) {
      Array.prototype.forEach.call(body.rows, function (row) {
        var column = 0;
        Array.prototype.forEach.call(row.cells, function (cell) {
          var label = headings[column];
          if (!cell.textContent.trim() && !cell.querySelector("a, button, input, select, img, svg")) {
            cell.setAttribute("data-blank", ""); // nothing to show: no empty line in the card
          }
          if (label && cell.colSpan === 1 && !cell.hasAttribute("data-label")) {
            cell.setAttribute("data-label", label);
          }
          column += cell.colSpan || 1;
        });
      });
    });
  });
})();
