// The KSR functions a plugin file uses (KSR.info, KSR.pv.sets, …) and the ones a generated kamailio-jsdt-types
// file declares. build.mjs fails the build when the plugin uses one that Kamailio 5.6 (index.d.ts, the lowest
// supported) lacks, naming it and saying when a newer Kamailio has it: app_jsdt would throw at run time on 5.6.
import { readFileSync } from "node:fs";
import ts from "typescript";

/** Each `KSR.name` or `KSR.module.name` in the source, with its position (the longest chain from KSR, two deep). */
export function ksrCalls(fileName, source) {
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, true);
  const found = [];
  const visit = (node) => {
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === "KSR") {
      const parent = node.parent;
      const outer = ts.isPropertyAccessExpression(parent) && parent.expression === node ? parent : node;
      const name = outer === node ? node.name.text : `${node.name.text}.${outer.name.text}`;
      const { line, character } = file.getLineAndCharacterOfPosition(outer.getStart(file));
      found.push({ name, line: line + 1, column: character, lineText: source.split("\n")[line] });
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

/** Every name `KSR.…` may use under a generated declaration file: "info", "pv", "pv.sets", "x.modf", … */
export function declaredKsrNames(dtsPath) {
  const file = ts.createSourceFile(dtsPath, readFileSync(dtsPath, "utf8"), ts.ScriptTarget.Latest, true);
  const interfaces = new Map();
  for (const statement of file.statements)
    if (ts.isInterfaceDeclaration(statement)) interfaces.set(statement.name.text, statement.members);
  const memberNames = (members) => members.filter((m) => m.name && ts.isIdentifier(m.name)).map((m) => m.name.text);
  const names = new Set();
  for (const member of interfaces.get("Ksr") ?? []) {
    if (!member.name || !ts.isIdentifier(member.name)) continue;
    const name = member.name.text;
    names.add(name);
    const type = ts.isPropertySignature(member) ? member.type : undefined;
    // `pv: KsrPv;` names another interface; app_jsdt's own `x: { … }` is written inline.
    const members =
      type && ts.isTypeReferenceNode(type)
        ? interfaces.get(type.typeName.getText(file))
        : type && ts.isTypeLiteralNode(type)
          ? type.members
          : undefined;
    for (const inner of members ? memberNames([...members]) : []) names.add(`${name}.${inner}`);
  }
  if (!names.size) throw new Error(`${dtsPath} declares no KSR members`);
  return names;
}

/** esbuild errors for each KSR name of `source` that `lowest` (a declaredKsrNames set) lacks. */
export function ksrCallErrors(fileName, source, lowest, newer) {
  return ksrCalls(fileName, source)
    .filter((call) => !lowest.names.has(call.name))
    .map((call) => {
      const inNewer = newer.filter((version) => version.names.has(call.name)).map((version) => version.label);
      return {
        text:
          `KSR.${call.name} is not in ${lowest.label}'s app_jsdt (${lowest.file})${inNewer.length ? `, only in ${inNewer.join(", ")}` : ""}: ` +
          `the plugin must run on ${lowest.label}, the lowest supported`,
        location: { file: fileName, line: call.line, column: call.column, lineText: call.lineText },
      };
    });
}
