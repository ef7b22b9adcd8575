#!/usr/bin/env node
// tools/lint/asyncapi-check.cjs FILE — validate an AsyncAPI document
// (generated/asyncapi.yaml) with the AsyncAPI parser from npm
// (@asyncapi/parser, pinned in package-lock.json). Prints every diagnostic;
// exits 1 when any has severity error (0) or the file does not parse, 2 on
// bad usage. Run by `make lint` and the CTest test contract.asyncapi.
"use strict";
const fs = require("fs");
const path = require("path");
const { Parser, DiagnosticSeverity } = require("@asyncapi/parser");

async function main() {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write("usage: asyncapi-check.cjs FILE\n");
    return 2;
  }
  const text = fs.readFileSync(file, "utf8");
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(text, { source: path.resolve(file) });
  const names = ["error", "warning", "information", "hint"];
  let errors = 0;
  for (const d of diagnostics) {
    const where = d.path && d.path.length ? d.path.join(".") : "(document)";
    const line = d.range ? d.range.start.line + 1 : 0;
    process.stdout.write(`${file}:${line}: ${names[d.severity] || d.severity} ${d.code}: ${d.message} at ${where}\n`);
    if (d.severity === DiagnosticSeverity.Error) errors++;
  }
  if (!document || errors) {
    process.stdout.write(`asyncapi-check: ${file}: ${errors} error(s)${document ? "" : ", not parsed"}\n`);
    return 1;
  }
  const ops = document.operations().length;
  const msgs = document.allMessages().length;
  process.stdout.write(`asyncapi-check: ${file}: valid AsyncAPI ${document.version()} ` +
                       `(${ops} operations, ${msgs} messages, ${diagnostics.length} diagnostics below error)\n`);
  return 0;
}

main().then((rc) => process.exit(rc), (err) => {
  process.stderr.write(`asyncapi-check: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
