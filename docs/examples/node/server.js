// A small web app for minicloud: answers / and /healthz, counts visits in its storage.
const http = require("node:http");
const fs = require("node:fs");

const counter = "/data/visits";

http
  .createServer((req, res) => {
    if (req.url === "/healthz") {
      res.end("ok\n");
      return;
    }
    const visits = (fs.existsSync(counter) ? Number(fs.readFileSync(counter, "utf8")) : 0) + 1;
    fs.writeFileSync(counter, String(visits));
    res.setHeader("Content-Type", "text/plain; charset=utf-8");
    res.end(`Hello from ${process.env.APP_NAME}: visit ${visits}\n`);
  })
  .listen(Number(process.env.PORT || 3000), "0.0.0.0");

// minicloud stops a revision with SIGTERM: finish what is in flight, then exit.
process.on("SIGTERM", () => process.exit(0));
