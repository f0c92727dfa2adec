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
      for (var i = 0; i < (cell.colSpan || 1); i++) headings.push(cell.textContent.trim());
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
          if (label && cell.colSpan === 1 && !cell.hasAttribute("data-label")) {
            cell.setAttribute("data-label", label);
          }
          column += cell.colSpan || 1;
        });
      });
    });
  });
})();
