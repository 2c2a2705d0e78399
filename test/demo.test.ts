// `npm run demo` end to end: the script starts the real product, the mock APNs and sipp, and must tell the
// story of one woken call, step by step, in order, in the shape of a deployment: alice@example.com, her phone on a
// loopback address of its own (not Kamailio's 127.0.0.1) with a Contact user that is not "alice".
import { beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");

function runDemo(): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, "scripts", "demo.mjs")], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("exit", (code) => resolve({ code, output }));
  });
}

// One run of the demo for both tests.
let demoRun: Promise<{ code: number | null; output: string }>;

beforeAll(() => {
  demoRun = runDemo();
});

describe("npm run demo", () => {
  it("wakes a sleeping phone and prints each step of the call in order, then exits 0", async () => {
    const { code, output } = await demoRun;
    expect(code, output).toBe(0);
    const steps = [
      "REGISTER stored",
      "INVITE held",
      "push sent (APNs got POST /3/device/",
      "phone REGISTERs",
      "call answered",
    ];
    const positions = steps.map((text) => output.indexOf(text));
    expect(
      positions.every((position) => position >= 0),
      output,
    ).toBe(true);
    expect(
      [...positions].sort((a, b) => a - b),
      output,
    ).toEqual(positions);
    // Every step after the INVITE carries its time since the call started.
    expect(output).toMatch(/\+\s*\d+ ms {2}push sent/);
    expect(output).toMatch(/wake latency: \d+ ms/);
  }, 30_000);

  it("calls alice at her AOR on a named domain, her phone on its own address with a Contact user of its own", async () => {
    const { output } = await demoRun;
    expect(output).toMatch(/INVITE sip:alice@example\.com sent by the caller at 127\.0\.0\.\d+/);
    const phone = /registered from (127\.0\.0\.\d+):\d+ as sip:([^@]+)@\1:/.exec(output);
    expect(phone, output).not.toBeNull();
    expect(phone![1]).not.toBe("127.0.0.1");
    expect(phone![2]).not.toBe("alice");
  }, 30_000);
});
