// Polls `condition` until it holds. On timeout it throws, naming what was awaited; `what` may be a function, to add
// context (a process's output) only when it is needed.
export async function waitUntil(
  condition: () => boolean,
  timeoutMs: number,
  what: string | (() => string),
  pollMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === "function" ? what() : what}`);
    await new Promise((done) => setTimeout(done, pollMs));
  }
}
