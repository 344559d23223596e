// minicloud admin: the live parts. Every page works without this file.
"use strict";

// Times: "3 min ago", with the exact time in the browser's zone on hover.
function relative(date) {
  const s = Math.round((Date.now() - date.getTime()) / 1000);
  const units = [[86400, "day"], [3600, "h"], [60, "min"]];
  if (s < 45) return "just now";
  for (const [size, name] of units) {
    if (s >= size) {
      const n = Math.floor(s / size);
      return name === "day" ? `${n} day${n === 1 ? "" : "s"} ago` : `${n} ${name} ago`;
    }
  }
  return "just now";
}

function showTimes() {
  for (const el of document.querySelectorAll("time[datetime]")) {
    const date = new Date(el.getAttribute("datetime"));
    if (isNaN(date)) continue;
    el.title = date.toLocaleString();
    el.textContent = relative(date);
  }
}

// Reads a server-sent event stream from a fetch response: calls onEvent(name, data).
async function readEvents(response, onEvent) {
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
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

function describe(event) {
  switch (event.event) {
    case "step": return event.message;
    case "pull": {
      const mib = (b) => (b / 1048576).toFixed(1);
      return `Pulling: ${mib(event.bytes_done)} of ${mib(event.bytes_total)} MiB`;
    }
    case "deployed": return `Revision ${event.revision} serves`;
    case "unchanged": return `Revision ${event.revision} already runs this image`;
    case "failed": return `Failed: ${event.reason}`;
    default: return event.event;
  }
}

// Forms marked data-progress: sent in the background, the operation's progress shown live.
function streamForm(form) {
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const box = form.querySelector(".progress");
    const bar = box && box.querySelector("progress");
    const out = box && box.querySelector("output");
    const button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
    if (box) box.hidden = false;
    if (bar) bar.removeAttribute("value");
    const say = (text) => { if (out) out.textContent = text; };
    say("Starting…");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(new FormData(form)),
        headers: { Accept: "text/event-stream" },
      });
      if (response.redirected) { location.href = response.url; return; } // signed out
      if (!(response.headers.get("content-type") || "").includes("event-stream")) {
        // Refused before the operation started: the server's error page says why.
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const why = page.querySelector("#error-message");
        say(why ? why.textContent : `${response.status} ${response.statusText}`);
        if (out) out.classList.add("error");
        if (button) button.disabled = false;
        return;
      }
      await readEvents(response, (name, data) => {
        if (name === "progress") {
          say(describe(data));
          if (data.event === "pull" && data.bytes_total > 0 && bar) {
            bar.value = Math.round((100 * data.bytes_done) / data.bytes_total);
          }
        } else if (name === "result") {
          if (data.ok) {
            say("Done.");
            const app = data.app && data.app.name;
            location.href = app ? `/apps/${encodeURIComponent(app)}` : location.href;
          } else {
            say(data.error || "It failed.");
            if (out) out.classList.add("error");
            // A failed deploy's last log lines: usually why.
            const tail = data.deploy && data.deploy.log_tail;
            const pre = box && box.querySelector("pre.logs");
            if (tail && pre) { pre.textContent = tail; pre.hidden = false; }
            if (button) button.disabled = false;
          }
        }
      });
    } catch (err) {
      say(`Lost the connection: ${err}. Reload to see where it got.`);
      if (button) button.disabled = false;
    }
  });
}

// Copy buttons: shown only where a script and a clipboard can run them.
function copyButtons() {
  if (!navigator.clipboard) return;
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.querySelector(button.dataset.copy);
      if (!source) return;
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
    });
  }
}

// The logs page's Follow: new lines appended as they come (those the filter keeps). A stream
// that breaks (a network change, minicloud restarting) is opened again until Stop is pressed.
function followLogs() {
  const button = document.querySelector("button[data-follow]");
  const pre = document.querySelector("#logs");
  if (!button || !pre) return;
  button.hidden = false;
  let stop = null;
  const readOnce = async (signal, filter) => {
    const response = await fetch(button.dataset.follow, { signal });
    // Signed out, or the app is gone: following again would not help.
    if (response.redirected || (response.status >= 400 && response.status < 500)) return false;
    if (!response.ok) return true;
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let rest = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      rest += decoder.decode(value, { stream: true });
      const lines = rest.split("\n");
      rest = lines.pop();
      const kept = lines.filter((l) => l.includes(filter));
      if (kept.length) {
        pre.append(kept.join("\n") + "\n");
        pre.scrollTop = pre.scrollHeight;
      }
    }
  };
  button.addEventListener("click", async () => {
    if (stop) { stop.abort(); return; }
    stop = new AbortController();
    const signal = stop.signal;
    button.textContent = "Stop following";
    const filter = (document.querySelector("#q") || {}).value || "";
    let again = true;
    while (again && !signal.aborted) {
      try { again = await readOnce(signal, filter); } catch (_) { /* broken, or stopped */ }
      if (again && !signal.aborted) await new Promise((wait) => setTimeout(wait, 1000));
    }
    stop = null;
    button.textContent = "Follow";
  });
}

document.addEventListener("DOMContentLoaded", () => {
  copyButtons();
  followLogs();
  showTimes();
  setInterval(showTimes, 30000);
  for (const form of document.querySelectorAll("form[data-progress]")) streamForm(form);
});
