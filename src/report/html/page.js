(function () {
  "use strict";
  // Click (or Enter on) a column header to sort the table by it; again to
  // reverse. A numeric cell is its number, or the data-v it carries when
  // it shows something else ("-", "5.2%"). The tables are complete
  // without this script.
  function key(cell, numeric) {
    if (!numeric) {
      return cell.textContent;
    }
    var v = cell.getAttribute("data-v");
    return Number(v === null ? cell.textContent : v);
  }
  var tables = document.querySelectorAll("table.sortable");
  Array.prototype.forEach.call(tables, function (table) {
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      th.tabIndex = 0;
      th.setAttribute("aria-sort", "none");
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        var numeric = th.classList.contains("n");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = key(a.cells[col], numeric);
          var y = key(b.cells[col], numeric);
          var c = x < y ? -1 : x > y ? 1 : 0;
          return ascending ? c : -c;
        });
        Array.prototype.forEach.call(heads, function (h) {
          h.setAttribute("aria-sort", "none");
        });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        rows.forEach(function (r) {
          body.appendChild(r);
        });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          sort();
        }
      });
    });
  });
})();
