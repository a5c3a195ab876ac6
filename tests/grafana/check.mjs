// Checks galley's Grafana dashboard without a Grafana (none can be installed here):
//
// 1. against Grafana's own dashboard schema, the `Dashboard` type of @grafana/schema:
//    the JSON is type-checked by the TypeScript compiler as an object literal of that
//    type, so an unknown field, a wrong type or a missing required field fails;
// 2. that every panel has a Prometheus query, an id and a place on the grid, and that
//    every query reads only galley's and mysqld_exporter's metric names (mysql_*,
//    galley_*). That each such name is one galley really exports is checked against
//    live pages by `cargo test -p galley --test it metrics`.
//
// Usage: node check.mjs [path/to/galley.json]; exits 1 with the problems listed.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
const dashboardPath = process.argv[2] ?? path.join(here, "../../deploy/grafana/galley.json");
const text = fs.readFileSync(dashboardPath, "utf8");
const dashboard = JSON.parse(text);
const problems = [];

// 1. The schema. The checked file lives beside node_modules so that it resolves there.
const checked = path.join(here, `.dashboard-check-${process.pid}.ts`);
fs.writeFileSync(
  checked,
  `import type { Dashboard } from "@grafana/schema";\nexport const dashboard: Dashboard = ${text};\n`,
);
try {
  const program = ts.createProgram([checked], {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.ESNext,
    moduleResolution: ts.ModuleResolutionKind.Bundler,
    skipLibCheck: true,
    types: [],
  });
  for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n");
    let where = "";
    if (diagnostic.file && diagnostic.start !== undefined) {
      const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
      // Line 1 of the checked file is the import; the JSON starts on line 2.
      where = `${path.basename(dashboardPath)}:${line} `;
    }
    problems.push(`schema: ${where}${message}`);
  }
} finally {
  fs.rmSync(checked, { force: true });
}

// 2. The panels and their queries.
const metricName = /\b(mysql_[a-z0-9_]+|galley_[a-z0-9_]+)\b/g;
const functions = new Set(["rate", "increase", "sum", "max", "count", "histogram_quantile", "vector", "by", "or"]);
const queried = new Set();
const ids = new Set();
for (const panel of dashboard.panels ?? []) {
  if (ids.has(panel.id)) problems.push(`panel ${panel.id} (${panel.title}): id used twice`);
  ids.add(panel.id);
  if (!panel.gridPos) problems.push(`panel ${panel.title}: no gridPos`);
  if (panel.type === "row") continue;
  if (!panel.targets?.length) problems.push(`panel ${panel.title}: no query`);
  for (const target of panel.targets ?? []) {
    const names = [...(target.expr ?? "").matchAll(metricName)].map((m) => m[1]);
    if (names.length === 0) problems.push(`panel ${panel.title}: query ${target.expr} reads no galley or mysql_ metric`);
    for (const name of names) queried.add(name);
    // Any other identifier before "(" or "{" is a metric of someone else's.
    for (const m of (target.expr ?? "").matchAll(/\b([a-z_][a-z0-9_:]*)\s*[({]/g)) {
      if (!functions.has(m[1]) && !m[1].startsWith("mysql_") && !m[1].startsWith("galley_")) {
        problems.push(`panel ${panel.title}: ${m[1]} is not a galley metric`);
      }
    }
  }
}

if (process.env.GALLEY_DASHBOARD_METRICS) {
  // The metrics test asks for the names the dashboard queries.
  fs.writeFileSync(process.env.GALLEY_DASHBOARD_METRICS, [...queried].sort().join("\n") + "\n");
}

if (problems.length > 0) {
  console.error(`${dashboardPath}: ${problems.length} problem(s):\n${problems.join("\n")}`);
  process.exit(1);
}
console.log(`${dashboardPath}: valid Grafana dashboard, ${ids.size} panels, ${queried.size} metrics queried`);
