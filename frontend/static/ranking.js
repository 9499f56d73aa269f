// Ranked contests, with JavaScript: "Move up" / "Move down" buttons beside each candidate
// (and Alt+Arrow keys in a rank box) put the candidates in order and number them. Without
// JavaScript the rank boxes work as they are; the numbers are always what is sent. A
// number typed by hand does not move anything (nothing shifts under the pointer); the
// next move puts the list in order.
(function () {
  "use strict";

  function ordinal(n) {
    var s = ["th", "st", "nd", "rd"], v = n % 100;
    return n + (s[(v - 20) % 10] || s[v] || s[0]);
  }

  function itemName(li) {
    return li.querySelector("label").textContent.trim();
  }

  function rankOf(li) {
    var n = parseInt(li.querySelector("input.rank").value, 10);
    return isNaN(n) ? 0 : n;
  }

  // Ranked candidates first, in their order; the others after, as they stood.
  function sortList(list) {
    var items = Array.prototype.slice.call(list.children);
    var ranked = items.filter(rankOf).sort(function (a, b) { return rankOf(a) - rankOf(b); });
    var rest = items.filter(function (li) { return !rankOf(li); });
    ranked.concat(rest).forEach(function (li) { list.appendChild(li); });
  }

  // Numbers 1..k on the ranked ones, in the order they stand.
  function renumber(list) {
    var k = 0;
    Array.prototype.forEach.call(list.children, function (li) {
      var input = li.querySelector("input.rank");
      input.value = rankOf(li) ? String(++k) : "";
    });
  }

  function move(list, li, up, live) {
    sortList(list); // numbers typed by hand first take their places
    var input = li.querySelector("input.rank");
    var ranked = Array.prototype.filter.call(list.children, rankOf);
    if (!rankOf(li)) {
      // An unranked candidate moved up joins the ranking, last.
      if (!up) return;
      input.value = String(ranked.length + 1);
    } else {
      var at = ranked.indexOf(li);
      var other = ranked[up ? at - 1 : at + 1];
      if (!other && !up) {
        input.value = ""; // moved down past the last rank: no longer ranked
      } else if (other) {
        var mine = input.value;
        input.value = other.querySelector("input.rank").value;
        other.querySelector("input.rank").value = mine;
      } else {
        return;
      }
    }
    sortList(list);
    renumber(list);
    var rank = rankOf(li);
    live.textContent = itemName(li) + (rank ? " is now your " + ordinal(rank) + " choice." : " is no longer ranked.");
  }

  function button(text, label) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "secondary move";
    b.textContent = text;
    b.setAttribute("aria-label", label);
    return b;
  }

  Array.prototype.forEach.call(document.querySelectorAll("ol.ranking"), function (list) {
    var live = document.createElement("p");
    live.className = "small";
    live.setAttribute("aria-live", "polite");
    list.parentNode.insertBefore(live, list.nextSibling);
    Array.prototype.forEach.call(list.children, function (li) {
      var input = li.querySelector("input.rank");
      if (input.disabled) return;
      var name = itemName(li);
      var up = button("Move up", "Move " + name + " up");
      var down = button("Move down", "Move " + name + " down");
      up.addEventListener("click", function () { move(list, li, true, live); up.focus(); });
      down.addEventListener("click", function () { move(list, li, false, live); down.focus(); });
      input.addEventListener("keydown", function (e) {
        if (!e.altKey || (e.key !== "ArrowUp" && e.key !== "ArrowDown")) return;
        e.preventDefault();
        move(list, li, e.key === "ArrowUp", live);
        input.focus();
      });
      var controls = document.createElement("span");
      controls.className = "move-controls";
      controls.appendChild(up);
      controls.appendChild(down);
      input.parentNode.insertBefore(controls, input.nextSibling);
    });
    sortList(list);
  });
})();
