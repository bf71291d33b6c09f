// Sortable tables (click a header; numbers sort as numbers, empty cells last either way) and the
// leaderboard's filter. Loaded as a plain <script src>, so the pages work when opened from disk.
"use strict";

function sortBy(table, th) {
  const col = th.cellIndex;
  const numeric = th.dataset.type === "num";
  const dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
  for (const h of th.parentElement.cells) h.removeAttribute("aria-sort");
  th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
  const key = (row) => row.cells[col].dataset.sort ?? row.cells[col].textContent.trim();
  const rows = [...table.tBodies[0].rows];
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === "" || y === "") return (x === "") - (y === "");
    return dir * (numeric ? Number(x) - Number(y) : x.localeCompare(y));
  });
  table.tBodies[0].append(...rows);
}

for (const table of document.querySelectorAll("table.sortable")) {
  for (const th of table.tHead.rows[0].cells) th.addEventListener("click", () => sortBy(table, th));
}

const filter = document.getElementById("filter");
const hideBaselines = document.getElementById("hide-baselines");
if (filter && hideBaselines) {
  const board = document.getElementById("board");
  const apply = () => {
    const q = filter.value.trim().toLowerCase();
    for (const row of board.tBodies[0].rows) {
      const baseline = row.classList.contains("baseline");
      row.hidden = !row.dataset.search.includes(q) || (hideBaselines.checked && baseline);
    }
  };
  filter.addEventListener("input", apply);
  hideBaselines.addEventListener("change", apply);
  apply();  // the browser may restore the inputs' state on reload
}
