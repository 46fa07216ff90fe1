// The dashboard's refresh: the panels are fetched again and swapped in, without reloading the page,
// on the button and every 60 s. Without this script the page still shows everything (reload to refresh).
(function () {
  "use strict";
  var button = document.getElementById("refresh");
  var panels = document.getElementById("panels");
  var note = document.getElementById("refreshed");
  if (!button || !panels) return;
  function refresh() {
    button.disabled = true;
    fetch(button.dataset.url, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (answer) {
        if (!answer.ok) throw new Error("HTTP " + answer.status);
        return answer.text();
      })
      .then(function (html) {
        panels.innerHTML = html;
        note.textContent = "已刷新 " + new Date().toLocaleTimeString("zh-CN", { timeZone: "Asia/Shanghai", hour12: false });
      })
      .catch(function () { note.textContent = "刷新失败，请稍后再试"; })
      .finally(function () { button.disabled = false; });
  }
  button.addEventListener("click", refresh);
  setInterval(refresh, 60000);
})();
