// The playground: a dialogue with the model through the chat API (/api/v1/chat/completions, streamed),
// paid by the follower's own key, which the page fetches once from a POST carrying the CSRF token.
"use strict";

const MAX_CHARS = 2000; // the spec's budget: the oldest user/assistant pairs are forgotten past it
const READABLE = {
  40003: "问题太长了，请精简到 2000 字以内。",
  40006: "你的问题包含本服务不接受的内容，请换个说法。",
  40102: "你的密钥已失效（可能刚更换过），请刷新页面。",
  40201: "余额不足，无法继续提问。",
  40301: "你的账号已被暂停使用。",
  42901: "提问太频繁了，请稍等片刻再试。",
  50201: "模型暂时无法回答，请稍后再试。",
  50301: "服务暂时不可用，请稍后再试。",
  50401: "模型响应超时，请稍后再试。",
};
let turns = [];
let key = null;

function trim(dialogue) {
  let total = dialogue.reduce((sum, t) => sum + t.content.length, 0);
  let start = 0;
  while (total > MAX_CHARS && dialogue.length - start > 1) {
    total -= dialogue[start].content.length + dialogue[start + 1].content.length;
    start += 2;
  }
  return dialogue.slice(start);
}

function readable(code, msg) {
  return READABLE[code] || "出错了：" + (msg || "未知错误") + "（" + code + "）";
}

function bubble(role, text) {
  const item = document.createElement("li");
  item.className = role;
  const who = document.createElement("span");
  who.className = "who";
  who.textContent = role === "user" ? "你" : "小一";
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(who, body);
  document.getElementById("dialogue").append(item);
  return item;
}

function showProblem(text) {
  const problem = document.getElementById("problem");
  problem.textContent = text;
  problem.hidden = !text;
}

async function ownKey() {
  if (key) return key;
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const response = await fetch("/me/key", {
    method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": token, Accept: "application/json" },
  });
  if (!response.ok) throw new Error(response.status === 404 ? "你还没有密钥，请先在「我的密钥」获取。" : "无法读取你的密钥，请刷新页面。");
  key = (await response.json()).key;
  return key;
}

async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("");
      if (data && data !== "[DONE]") yield JSON.parse(data);
    }
  }
}

async function ask(question) {
  const dialogue = trim([...turns, { role: "user", content: question }]);
  const response = await fetch("/api/v1/chat/completions", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ api_secret_key: await ownKey(), messages: dialogue, stream: true }),
  });
  if (!response.ok) {
    const error = await response.json().catch(() => ({ code: response.status, msg: "" }));
    throw new Error(readable(error.code, error.msg));
  }
  const answer = bubble("assistant", "");
  const text = answer.querySelector(".text");
  let written = "";
  for await (const event of events(response)) {
    if (event.code !== 0) throw new Error(readable(event.code, event.msg));
    const choice = (event.choices || [])[0];
    if (choice && choice.delta && choice.delta.content) {
      written += choice.delta.content;
      text.textContent = written;
    }
    if (event.usage) {
      const usage = document.createElement("span");
      usage.className = "usage";
      usage.textContent = "本次用量：" + event.usage.prompt_tokens + " + " + event.usage.completion_tokens + " = " + event.usage.total_tokens + " tokens";
      answer.append(usage);
    }
  }
  turns = trim([...dialogue, { role: "assistant", content: written }]);
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("ask");
  const field = document.getElementById("question");
  const send = document.getElementById("send");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = field.value.trim();
    if (!question) return;
    showProblem("");
    send.disabled = true;
    bubble("user", question);
    field.value = "";
    try {
      await ask(question);
    } catch (error) {
      showProblem(error.message);
    } finally {
      send.disabled = false;
      field.focus();
    }
  });
  document.getElementById("clear").addEventListener("click", () => {
    turns = [];
    document.getElementById("dialogue").replaceChildren();
    showProblem("");
  });
});
