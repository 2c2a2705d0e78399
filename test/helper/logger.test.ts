// The helper's log lines: one line per message whatever the message holds (instance and app ids come from phones).
import { expect, it } from "vitest";
import { createLogger } from "../../src/helper/logger";

function linesOf(message: string): string[] {
  const written: string[] = [];
  createLogger("info", (line) => written.push(line)).warn(message);
  return written;
}

it("writes a message holding CR, LF, ESC or NUL as one line, each control character escaped", () => {
  const [line, ...more] = linesOf(
    "push failed instance=urn:x\r\n2024-01-01T00:00:00.000Z ERROR forged \x1b[2J\x00 app=\x9b31m",
  );
  expect(more).toEqual([]);
  expect(line).toMatch(
    /^\S+ WARN push failed instance=urn:x\\x0d\\x0a2024-01-01T00:00:00\.000Z ERROR forged \\x1b\[2J\\x00 app=\\x9b31m$/,
  );
  expect(line).not.toMatch(/[\x00-\x1f\x7f-\x9f]/);
});

it("leaves printable text as it is, UTF-8 included", () => {
  expect(linesOf('caller Jürgen 📞 "quoted" \\ back')[0]).toMatch(/ WARN caller Jürgen 📞 "quoted" \\ back$/);
});
