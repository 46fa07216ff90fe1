// /me and the new-key page: "show" and "copy" fetch the key from a POST carrying the CSRF token.
// Without script, "show" is a plain form post and works the same.
"use strict";

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

async function fetchKey() {
  const response = await fetch("/me/key", {
    method: "POST",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    credentials: "same-origin",
  });
  if (!response.ok) throw new Error("HTTP " + response.status);
  return (await response.json()).key;
}

function say(text) {
  const note = document.getElementById("copy-note");
  if (note) note.textContent = text;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    say("已复制到剪贴板。");
  } catch (error) {
    say("无法自动复制，请长按密钥手动复制。");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const shown = document.getElementById("key");
  const showForm = document.getElementById("show-form");
  if (showForm && shown) {
    showForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        shown.textContent = await fetchKey();
        say("密钥已显示，请勿泄露给他人。");
      } catch (error) {
        say("显示失败，请刷新页面后再试。");
      }
    });
  }
  const copy = document.getElementById("copy");
  if (copy) {
    copy.addEventListener("click", async () => {
      try {
        await copyText(await fetchKey());
      } catch (error) {
        say("复制失败，请刷新页面后再试。");
      }
    });
  }
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", () => copyText(document.getElementById(button.dataset.copy).textContent));
  }
});
